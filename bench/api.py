"""The read side under attack, on loopback: a real redis-server and the real API process (`chiso766 api`).

  1. baseline: a second client's requests for a while (requests/s, p50, p99, max), nothing else open;
  2. limits: one address opens its allowance of live streams and one more (429), then closes them;
  3. flood: STREAMS live streams from ADDRESSES loopback addresses (127.0.0.2, …: the per-address
     limit counts each) and SLOW connections that drip a request head a byte-line a second, reopened
     as soon as the server closes them; the total limit answers one more stream 503; a scores event
     a second reaches every stream through the API's one subscription; the second client again;
  4. Redis killed under the flood: every answer is JSON 503 `projection_unavailable` (health names
     redis), the streams hear `status unavailable`; Redis started again: seconds until the API
     answers 200 again, and the streams hear `status available`.

Run: `python -m bench.api [--streams 1000] [--slow 300] [--seconds 10]`; its last line is one JSON
object with the keys the README lists. tests/integration/test_api_load.py runs it at a size CI fits.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
import redis.asyncio as aioredis

from api.limits import env_name
from bench.api_flood import flood_main
from contracts.keys import RedisKeys
from schemas import Rejection, decode
from scoring.engine import Engine
from scoring.lifecycle import epoch_seconds
from scoring.periods import periods_of
from streams.projection_writer import write_scores
from support.resources import load_calendar, load_ruleset
from support.simulate import Simulator
from support.stack import LoneRedis, free_port

NAMESPACE = "bench-api"
TOKEN = "bench-token"


@dataclass(frozen=True)
class Size:
    streams: int = 1000
    slow: int = 300
    addresses: int = 25  # streams spread over 127.0.0.2 … (the per-address limit: streams / addresses + 10)
    seconds: float = 10.0  # each measured phase of the second client
    concurrency: int = 8  # the second client's requests in flight
    header_timeout: float = 10.0
    dossiers: int = 400  # the simulated history scored into the projection the client reads
    bound_ms: float = 2000.0  # every request of the second client answers within it, under the flood too

    @property
    def per_address(self) -> int:
        return -(-self.streams // self.addresses) + 10


# --- the projection and the API ------------------------------------------------------------------

async def seed_projection(redis_url: str, dossiers: int) -> list[str]:
    """Score a simulated history with the core and write it as the workers do; returns the paths the
    second client asks for."""
    ruleset, calendar = load_ruleset(), load_calendar()
    events = [event for event in (decode(line) for line in Simulator(766, dossiers, calendar=calendar,
                                                                    days=150).events())
              if not isinstance(event, Rejection)]
    engine = Engine(ruleset, calendar)
    engine.load(events)
    as_of = max(epoch_seconds(event.occurred_at) for event in events)
    month, _, year = periods_of(as_of)
    client = aioredis.from_url(redis_url)
    keys = RedisKeys(NAMESPACE)
    try:
        for period in (year, month):
            await write_scores(client, keys, period.key, as_of, ruleset, engine.score_units(period, as_of), [])
    finally:
        await client.aclose()
    return ["/api/health", "/api/periods", f"/api/leaderboard?period={year.key}&group=agencies:H15",
            f"/api/units/H15?period={year.key}", f"/api/groups?period={month.key}", "/api/ruleset"]


def start_api(redis_url: str, port: int, size: Size, log: Path) -> subprocess.Popen:
    limits = {"live_total": size.streams, "live_per_client": size.per_address, "header_timeout": size.header_timeout,
              "max_connections": size.streams + size.slow + 500}
    env = {**os.environ, "CHISO766_REDIS_URL": redis_url, "CHISO766_API_TOKEN": TOKEN,
           **{env_name(name): str(value) for name, value in limits.items()}}
    return subprocess.Popen([sys.executable, "-m", "cli.app", "api", "--namespace", NAMESPACE, "--port", str(port)],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


async def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> float:
    """Seconds until /api/health answers 200."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(f"{url}/api/health")).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"the API did not answer 200 within {timeout:.0f} s")
            await asyncio.sleep(0.05)


# --- the second client -----------------------------------------------------------------------------

@dataclass
class Phase:
    requests: int
    seconds: float
    statuses: dict[str, int]
    errors: dict[str, int]  # JSON "error" codes of the answers that were not 200
    not_json: int  # answers that were not JSON (a plain-text 500 would land here)
    by_path: dict[str, dict[str, int]]  # path → status → answers
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def second_client(url: str, paths: list[str], seconds: float, concurrency: int) -> Phase:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    by_path: dict[str, dict[str, int]] = {path: {} for path in paths}
    not_json = 0
    deadline = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal not_json
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            index = offset
            while time.monotonic() < deadline:
                path = paths[index % len(paths)]
                index += 1
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.TransportError as error:
                    statuses[type(error).__name__] = statuses.get(type(error).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)
                status = str(response.status_code)
                statuses[status] = statuses.get(status, 0) + 1
                by_path[path][status] = by_path[path].get(status, 0) + 1
                if response.status_code != 200:
                    try:
                        code = response.json()["error"]
                    except (ValueError, KeyError, TypeError):
                        not_json += 1
                    else:
                        errors[code] = errors.get(code, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]
    return Phase(len(latencies), elapsed, statuses, errors, not_json, by_path, statistics.median(ordered) * 1000,
                 ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, ordered[-1] * 1000)


async def stream_status(url: str, address: str) -> tuple[int, str | None]:
    """Open one live stream from `address`; its status and error code (the stream is closed again)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    try:
        writer.write(b"GET /api/live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split()[1])
        if status == 200:
            return status, None
        body = await asyncio.wait_for(reader.read(2000), 10)
        return status, orjson.loads(body[body.find(b"{"):body.rfind(b"}") + 1])["error"]
    finally:
        writer.close()


# --- the run -----------------------------------------------------------------------------------------

class Flood:
    """The flood's own process (bench.api_flood), so its 1,000+ sockets do not slow the second client."""

    def __init__(self, url: str, size: Size):
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=flood_main, args=(child, url, asdict(size)), daemon=True)
        self.process.start()

    async def ask(self, command: str, timeout: float = 120) -> dict:
        self.pipe.send(command)
        ready = await asyncio.to_thread(self.pipe.poll, timeout)
        if not ready:
            raise RuntimeError(f"the flood process did not answer {command!r} within {timeout:.0f} s")
        return self.pipe.recv()

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)


async def run(size: Size, work: Path) -> dict:
    redis_server = LoneRedis(work / "redis")
    redis_server.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start_api(redis_server.url, port, size, work / "api.log")
    flood: Flood | None = None
    result: dict = {"streams": size.streams, "slow_connections": size.slow, "bound_ms": size.bound_ms}
    try:
        paths = await seed_projection(redis_server.url, size.dossiers)
        await wait_healthy(url, api)
        cpu = cpu_seconds(api.pid)
        baseline = await second_client(url, paths, size.seconds, size.concurrency)
        result["api_cpu_baseline_s"] = round(cpu_seconds(api.pid) - cpu, 2)

        # 2. one address's allowance, and one more
        extra = await asyncio.gather(*(stream_holder(url, "127.0.0.250") for _ in range(size.per_address)))
        result["per_address_refusal"] = await stream_status(url, "127.0.0.250")
        for writer in extra:
            writer.close()

        # 3. the flood
        flood = Flood(url, size)
        opened = await flood.ask("open")
        result["streams_open"], result["stream_open_failures"] = opened["open"], opened["failed"]
        result["total_refusal"] = await stream_status(url, "127.0.0.251")
        publisher = aioredis.from_url(redis_server.url)
        subscribers = [entry for entry in await publisher.client_list() if int(entry.get("sub", 0))]
        result["redis_subscriptions"] = len(subscribers)
        ticking = asyncio.create_task(publish_scores(publisher, size.seconds))
        cpu, flood_cpu = cpu_seconds(api.pid), cpu_seconds(flood.process.pid)
        flooded = await second_client(url, paths, size.seconds, size.concurrency)
        result["api_cpu_flood_s"] = round(cpu_seconds(api.pid) - cpu, 2)
        result["flood_process_cpu_s"] = round(cpu_seconds(flood.process.pid) - flood_cpu, 2)
        await ticking
        during = await flood.ask("report")
        result.update(streams_with_scores=during["streams_with_scores"], slow_closed=during["slow_closed"],
                      slow_statuses=during["slow_statuses"], slow_held_max_s=during["slow_held_max_s"],
                      streams_open_at_end=during["open"])

        # 4. Redis killed under the flood, and started again
        redis_server.stop(signal.SIGKILL)
        down = await second_client(url, paths, max(2.0, size.seconds / 3), size.concurrency)
        async with httpx.AsyncClient(timeout=10) as client:
            health = await client.get(f"{url}/api/health")
        result["redis_down"] = {"statuses": down.statuses, "errors": down.errors, "not_json": down.not_json,
                                "by_path": down.by_path,
                                "health_status": health.status_code,
                                "health_dependencies": health.json().get("dependencies"),
                                "p99_ms": round(down.p99_ms, 1)}
        restarted = time.monotonic()
        redis_server.start()  # returns once it answers PING
        await wait_healthy(url, api)
        result["recovered_s"] = round(time.monotonic() - restarted, 3)
        after = await second_client(url, paths, 2.0, size.concurrency)
        result["after_recovery_statuses"] = after.statuses
        await asyncio.sleep(1.0)  # the hub resubscribes within its back-off
        heard = await flood.ask("report")
        result["streams_told_unavailable"] = heard["streams_unavailable"]
        result["streams_told_available"] = heard["streams_available"]
        await publisher.aclose()
        await flood.ask("stop")
    finally:
        if flood is not None:
            flood.close()
        api.terminate()
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            api.kill()
        redis_server.stop()
    result["baseline"] = summary(baseline)
    result["flood"] = summary(flooded)
    result.update(baseline_rps=round(baseline.rps, 1), baseline_p99_ms=round(baseline.p99_ms, 1),
                  flood_rps=round(flooded.rps, 1), flood_p99_ms=round(flooded.p99_ms, 1),
                  flood_max_ms=round(flooded.max_ms, 1), rps_ratio=round(flooded.rps / baseline.rps, 3),
                  within_bound=flooded.max_ms <= size.bound_ms and set(flooded.statuses) == {"200"})
    return result


async def stream_holder(url: str, address: str) -> asyncio.StreamWriter:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(address, 0))
    writer.write(b"GET /api/live HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if int(head.split()[1]) != 200:
        raise RuntimeError(f"a stream within the allowance was refused: {head[:80]!r}")
    return writer


async def publish_scores(client: aioredis.Redis, seconds: float) -> None:
    """What a worker publishes when it rewrites a period: once a second."""
    channel = RedisKeys(NAMESPACE).scores_live
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await client.publish(channel, orjson.dumps({"period": "year:2026", "as_of": "2026-06-01T00:00:00+07:00"}))
        await asyncio.sleep(1.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(phase: Phase) -> dict:
    return {"requests": phase.requests, "rps": round(phase.rps, 1), "p50_ms": round(phase.p50_ms, 1),
            "p99_ms": round(phase.p99_ms, 1), "max_ms": round(phase.max_ms, 1), "statuses": phase.statuses}


def raise_descriptor_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Size()
    parser.add_argument("--streams", type=int, default=defaults.streams)
    parser.add_argument("--slow", type=int, default=defaults.slow)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--header-timeout", type=float, default=defaults.header_timeout)
    parser.add_argument("--bound-ms", type=float, default=defaults.bound_ms)
    args = parser.parse_args()
    size = Size(streams=args.streams, slow=args.slow, seconds=args.seconds, header_timeout=args.header_timeout,
                bound_ms=args.bound_ms)
    raise_descriptor_limit(size.streams + size.slow + 256)
    with tempfile.TemporaryDirectory(prefix="chiso766-bench-api-") as work:
        result = asyncio.run(run(size, Path(work)))
    base, flood = result["baseline"], result["flood"]
    print(f"second client alone          {base['rps']:>8,.1f} req/s  p50 {base['p50_ms']:.1f} ms  "
          f"p99 {base['p99_ms']:.1f} ms  max {base['max_ms']:.1f} ms  {base['statuses']}")
    print(f"with {result['streams_open']} streams + {size.slow} slow {flood['rps']:>8,.1f} req/s  "
          f"p50 {flood['p50_ms']:.1f} ms  p99 {flood['p99_ms']:.1f} ms  max {flood['max_ms']:.1f} ms  "
          f"{flood['statuses']}")
    print(f"API CPU seconds: {result['api_cpu_baseline_s']} alone, {result['api_cpu_flood_s']} under the flood "
          f"(the flood's own process: {result['flood_process_cpu_s']}) over {size.seconds:g} s each")
    print(f"bound: every request 200 within {size.bound_ms:.0f} ms under the flood: "
          f"{'yes' if result['within_bound'] else 'NO'}")
    print(f"one address past {size.per_address} streams: {result['per_address_refusal']}; "
          f"past {size.streams} in all: {result['total_refusal']}; Redis subscriptions: "
          f"{result['redis_subscriptions']}; streams that got the scores events: {result['streams_with_scores']}")
    print(f"slow connections closed by the server: {result['slow_closed']} ({result['slow_statuses']}), "
          f"held at most {result['slow_held_max_s']} s (header timeout {size.header_timeout:g} s)")
    down = result["redis_down"]
    without = [path for path, statuses in down["by_path"].items() if statuses.get("200")]
    print(f"Redis killed: {down['statuses']} {down['errors']} (not JSON: {down['not_json']}; 200 only from "
          f"{without}, which reads no Redis), health "
          f"{down['health_status']} {down['health_dependencies']}; 200 again {result['recovered_s']} s after "
          f"it restarted; streams told: unavailable {result['streams_told_unavailable']}, available "
          f"{result['streams_told_available']}")
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
