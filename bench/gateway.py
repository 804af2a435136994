"""`python -m bench.gateway`: the gateway's records/s from HTTP calls of 100 records into Kafka, next to
a raw aiokafka producer sending the same translated events (the ceiling), and call latency p50/p99 at
1,000 records/s. Starts its own local stack and gateway process; prints one JSON line last:
{"gateway_rps", "raw_producer_eps", "p50_ms", "p99_ms", ...}."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from gateway.publisher import Publisher
from ingest.calls import envelope, translate_call
from ingest.dvcqg import DossierTranslator
from ingest.privacy import Pseudonymiser
from ingest.secret import DEMO_SECRET
from support import stack
from support.dvcqg_sim import sync_archive
from support.endpoints import wait_for_health

RECORDS_PER_CALL = 100
USERS = {"bench": "bench-password-long-enough"}


def calls(dossiers: int) -> list[dict]:
    """The simulated province's sync records regrouped into calls of 100 records per service and unit."""
    pending: dict[tuple[str, str], list] = {}
    out = []
    for line in sync_archive(7, dossiers, days=120):
        body = orjson.loads(line)
        if "event_type" in body:
            continue
        key = (body["service"], body["madonvi"])
        for record in body["data"]:
            group = pending.setdefault(key, [])
            group.append(record)
            if len(group) == RECORDS_PER_CALL:
                out.append({"madonvi": key[1], "service": key[0], "isUpdating": "True", "data": pending.pop(key)})
    return [call for call in out if call["service"] != "LayThuTuc"]


async def raw_producer(bootstrap: str, payload: list[dict]) -> tuple[float, int]:
    translator = DossierTranslator(Pseudonymiser(DEMO_SECRET))
    publisher = Publisher(bootstrap, "bench-raw")
    await publisher.start()
    await publisher.stop()
    messages = []
    events = 0
    for call in payload:
        service, unit, records = envelope(call)
        result = translate_call(translator, service, unit, records, int(time.time()))
        events += len(result.events)
        messages += publisher.messages(result.events)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=2,
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, value, key=key, partition=partition)
               for topic, partition, key, value in messages]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return elapsed, events


async def throughput(url: str, token: str, payload: list[dict], concurrency: int = 8) -> float:
    queue = list(payload)
    async with httpx.AsyncClient(timeout=60) as client:
        async def worker() -> None:
            while queue:
                call = {**queue.pop(), "session": token}
                answer = await client.post(f"{url}/integration", json=call)
                assert answer.json()["error_code"] in ("0", "1"), answer.text
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def paced(url: str, token: str, payload: list[dict], rate: float = 1000.0) -> list[float]:
    """Calls of 100 records sent at `rate` records/s (10 calls/s), each one's latency."""
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        async def one(call: dict) -> None:
            started = time.perf_counter()
            await client.post(f"{url}/integration", json={**call, "session": token})
            latencies.append((time.perf_counter() - started) * 1000)
        tasks = []
        interval = RECORDS_PER_CALL / rate
        begin = time.perf_counter()
        for index, call in enumerate(payload):
            await asyncio.sleep(max(0.0, begin + index * interval - time.perf_counter()))
            tasks.append(asyncio.create_task(one(call)))
        await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    name = f"bench-gateway-{os.getpid()}"
    info = stack.up(name)
    port = stack.free_port()
    env = {**os.environ, "CHISO766_GATEWAY_CREDENTIALS": orjson.dumps(USERS).decode(), "CHISO766_BOOTSTRAP":
           info.bootstrap, "CHISO766_REDIS_URL": info.redis_url, "CHISO766_PSEUDONYM_SECRET": DEMO_SECRET}
    process = subprocess.Popen([sys.executable, "-m", "cli.app", "gateway", "--port", str(port), "--namespace",
                                "bench"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url)
        token = httpx.post(f"{url}/auth", json={"username": "bench", "password": USERS["bench"]}).json()["session"]
        payload = calls(int(os.environ.get("BENCH_DOSSIERS", "4000")))
        records = sum(len(call["data"]) for call in payload)
        seconds = asyncio.run(throughput(url, token, payload))
        raw_seconds, events = asyncio.run(raw_producer(info.bootstrap, payload))
        latencies = sorted(asyncio.run(paced(url, token, payload[:300])))
        result = {"gateway_rps": round(records / seconds), "raw_producer_eps": round(events / raw_seconds),
                  "p50_ms": round(statistics.median(latencies), 1),
                  "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
                  "records": records, "events": events, "gateway_events_per_s": round(events / seconds),
                  "raw_vs_gateway_events": round((events / raw_seconds) / (events / seconds), 2)}
        print(f"{records:,} records in {len(payload):,} calls of {RECORDS_PER_CALL}: {seconds:.1f} s through the"
              f" gateway; the same {events:,} events from a raw producer: {raw_seconds:.2f} s", file=sys.stderr)
        print(orjson.dumps(result).decode())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        stack.down(name)


if __name__ == "__main__":
    main()
