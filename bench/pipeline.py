"""Pipeline benchmark against the local stack, on the same simulated events, in one run:

  (a) a naive Faust agent writing a table per event        (the baseline)
  (b) raw aiokafka getmany + orjson + a dict update         (the Kafka + Python floor)
  (c) the chiso766 pipeline end to end into Redis, one event per message
  (d) the same, fed JSON-array messages of 500 events
and the p50/p99 event→Redis latency of the pipeline at a fixed 2,000 events/s, and the serialized
size of an open dossier's table state. Every throughput is measured the same way: from the first
publish to the last event processed, with the consumer already running.

Run: `python -m bench.pipeline [--dossiers N]` (starts its own stack, stops it after). The last
line is one JSON object with the keys the README lists. The default, 8,000 dossiers (~98,000
events), keeps the pipeline busy for about two seconds, so its fixed costs (the closing watermark's
round trip, the last rescoring of every period) are a small part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import events as ev
from scoring.calendar import VIETNAM
from streams import replay
from streams.config import Settings
from streams.scorer import decode_dossier
from support import stack
from support.resources import load_calendar
from support.simulate import Simulator

LATENCY_RATE = 2000
LATENCY_SECONDS = 10


async def produce_singles(bootstrap: str, topic: str, lines: list[bytes]) -> float:
    """Send each event as its own message, keyed by its entity; returns when sending started."""
    keys = [ev.entity_key(ev_decode(line)).encode() for line in lines]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    started = time.time()
    try:
        for key, line in zip(keys, lines, strict=True):
            await producer.send(topic, line, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return started


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to a child's group; one that already died (the error being raised says why) is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def ev_decode(line: bytes) -> ev.EventBase:
    from schemas import Rejection, decode

    event = decode(line)
    assert not isinstance(event, Rejection), event
    return event


async def raw_loop(bootstrap: str, lines: list[bytes]) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await replay.ensure_topics(Settings(bootstrap, "", namespace="unused"))  # broker is up
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    producer_task = None
    await consumer.start()
    try:
        latest: dict[bytes, str] = {}
        count = 0
        producer_task = asyncio.create_task(produce_singles(bootstrap, topic, lines))
        while count < len(lines):
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            for records in batch.values():
                for record in records:
                    latest[record.key] = orjson.loads(record.value)["event_type"]
                    count += 1
        finished = time.time()
        started = await producer_task
    finally:
        await consumer.stop()
    return len(lines) / (finished - started)


def naive_faust(bootstrap: str, lines: list[bytes], log_dir: Path) -> float:
    topic = f"bench-naive-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CHISO766_BOOTSTRAP": bootstrap}
    process = subprocess.Popen([sys.executable, "-m", "bench.naive_faust", topic, str(len(lines))],
                               stdout=subprocess.PIPE, stderr=(log_dir / "naive.log").open("ab"), env=env,
                               start_new_session=True, text=True)
    try:
        async def warm_up() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            await producer.send_and_wait(topic, b"{}", key=b"warmup")
            await producer.stop()

        while True:
            asyncio.run(warm_up())
            line = process.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("READY"):
                break
            if process.poll() is not None:
                raise RuntimeError("the naive Faust worker exited; see naive.log")
        started = asyncio.run(produce_singles(bootstrap, topic, lines))
        while True:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if line.startswith("DONE"):
                return len(lines) / (float(line.split()[1]) - started)
            if not line:
                raise RuntimeError("the naive Faust worker stopped early")
    finally:
        stop_process_group(process)


async def ready(settings: Settings, worker: subprocess.Popen) -> None:
    """Until a worker has consumed and projected a watermark on every source."""
    probe = await replay.send_watermarks(settings, 0)
    await replay.wait_for(settings, probe, 180, worker=worker)


def pipeline(info: stack.StackInfo, catalogue: list[bytes], lines: list[bytes], log_dir: Path,
             batched: bool) -> tuple[float, Settings]:
    label = "d" if batched else "c"
    settings = Settings(info.bootstrap, info.redis_url, namespace=f"bench-{label}-{uuid.uuid4().hex[:6]}")
    asyncio.run(replay.publish(settings, catalogue, watermark=False))
    worker = replay.start_worker(settings, "replay", str(log_dir / f"{settings.namespace}.log"))
    try:
        asyncio.run(ready(settings, worker))

        async def run() -> float:
            if batched:  # arrays prepared before the clock starts, as the singles' keys are
                count = replay.HistoryCount()
                messages = list(replay.history_messages(lines, settings.partitions, count))
            started = time.time()
            if batched:
                token = await replay.send_messages(settings, messages, settings.partitions,
                                                   latest=lambda: count.latest)
                published = replay.Published(token, count.events, count.malformed, count.latest,
                                             replay.sources(settings.partitions))
            else:
                await produce_singles(settings.bootstrap, settings.topic("dossier-events"), lines)
                published = await replay.send_watermarks(settings, max(
                    int(ev_decode(line).occurred_at.timestamp()) for line in lines))
            # Polled often: the end time is the measurement (the naive agent reports its own).
            await replay.wait_for(settings, published, 1800, worker=worker, poll_seconds=0.005)
            return len(lines) / (time.time() - started)

        return asyncio.run(run()), settings
    finally:
        stop_process_group(worker)


async def latency(info: stack.StackInfo, log_dir: Path) -> tuple[float, float]:
    """Fresh dossiers at a fixed rate, one per message; each appears in Redis as an open dossier."""
    from datetime import datetime, timedelta

    settings = Settings(info.bootstrap, info.redis_url, namespace=f"bench-lat-{uuid.uuid4().hex[:6]}")
    worker = replay.start_worker(settings, "replay", str(log_dir / f"{settings.namespace}.log"))
    client = aioredis.from_url(info.redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=info.bootstrap, linger_ms=0)
    try:
        await ready(settings, worker)
        await producer.start()
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        total = LATENCY_RATE * LATENCY_SECONDS
        started = time.monotonic()

        sending = {"done": False}

        async def poll() -> None:
            while not sending["done"] or len(seen) < len(sent):
                pending = [code for code in sent if code not in seen]
                if pending:
                    pipe = client.pipeline(transaction=False)
                    for code in pending:
                        pipe.exists(settings.keys.dossier(code))
                    now = time.monotonic()
                    for code, present in zip(pending, await pipe.execute(), strict=True):
                        if present:
                            seen[code] = now
                await asyncio.sleep(0.002)

        poller = asyncio.create_task(poll())
        base = datetime.now(VIETNAM)
        for number in range(total):
            moment = base + timedelta(milliseconds=number)
            code = f"LAT-{number:06d}"
            event = ev.DossierReceived(event_id=code, occurred_at=moment, source="bench", dossier_code=code,
                                       unit_code="H15.01", procedure_code="P1", channel=2, received_at=moment,
                                       due_at=moment + timedelta(days=5))
            delay = started + number / LATENCY_RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.topic("dossier-events"), ev.encode(event), key=code.encode())
            if number % 20 == 0:
                sent[code] = time.monotonic()
        sending["done"] = True
        await asyncio.wait_for(poller, 120)
        samples = sorted((seen[code] - sent[code]) * 1000 for code in sent)
        return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]
    finally:
        await producer.stop()
        await client.aclose()
        stop_process_group(worker)


async def state_bytes_per_open_dossier(settings: Settings) -> float:
    topic = f"{settings.app_id}-dossier-state-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None)
    await consumer.start()
    latest: dict[bytes, bytes] = {}
    try:
        partitions = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic) or range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=20000)).values():
                for record in records:
                    latest[record.key] = record.value
    finally:
        await consumer.stop()
    sizes = [len(value) for value in latest.values() if value and decode_dossier(value).is_open]
    return sum(sizes) / len(sizes) if sizes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dossiers", type=int, default=8000)
    parser.add_argument("--latency-only", action="store_true", help="Measure only the latency at 2,000/s.")
    args = parser.parse_args()
    log_dir = Path(os.environ.get("CHISO766_DATA", "/tmp/chiso766-data")) / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    history = list(Simulator(766, args.dossiers, calendar=load_calendar(), days=120).events())
    catalogue = [line for line in history if b'"unit.upserted"' in line or b'"procedure.upserted"' in line]
    lines = [line for line in history if line not in set(catalogue)]
    name = f"bench-{os.getpid()}"
    info = stack.up(name)
    try:
        if args.latency_only:
            p50, p99 = asyncio.run(latency(info, log_dir))
            print(f"event→Redis latency at {LATENCY_RATE}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
            return
        naive_eps = naive_faust(info.bootstrap, lines, log_dir)
        print(f"(a) naive Faust, a table write per event   {naive_eps:>10,.0f} events/s", flush=True)
        raw_eps = asyncio.run(raw_loop(info.bootstrap, lines))
        print(f"(b) raw aiokafka getmany + orjson + dict   {raw_eps:>10,.0f} events/s", flush=True)
        single_eps, _ = pipeline(info, catalogue, lines, log_dir, batched=False)
        print(f"(c) chiso766 pipeline, 1 event/message     {single_eps:>10,.0f} events/s", flush=True)
        batched_eps, batched_settings = pipeline(info, catalogue, lines, log_dir, batched=True)
        print(f"(d) chiso766 pipeline, batched messages    {batched_eps:>10,.0f} events/s", flush=True)
        state_bytes = asyncio.run(state_bytes_per_open_dossier(batched_settings))
        p50, p99 = asyncio.run(latency(info, log_dir))
        print(f"event→Redis latency at {LATENCY_RATE}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
        print(f"table state per open dossier: {state_bytes:.0f} bytes; events: {len(lines):,}")
        print(f"ratios vs naive: single {single_eps / naive_eps:.1f}×, batched {batched_eps / naive_eps:.1f}×")
        print(orjson.dumps({
            "naive_faust_eps": round(naive_eps), "raw_eps": round(raw_eps), "pipeline_eps": round(single_eps),
            "pipeline_batched_eps": round(batched_eps), "ratio_vs_naive": round(single_eps / naive_eps, 2),
            "ratio_batched_vs_naive": round(batched_eps / naive_eps, 2), "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1), "state_bytes_per_open_dossier": round(state_bytes),
        }).decode())
    finally:
        stack.down(name)


if __name__ == "__main__":
    main()
