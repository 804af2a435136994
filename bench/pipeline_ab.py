"""Is this checkout's pipeline slower than another's? bench.pipeline's measurements, alternated.

Run: `python -m bench.pipeline_ab BASELINE [--this CHECKOUT] [--pairs 8] [--dossiers 8000]
[--modes single,arrays,latency,drain] [--bootstrap HOST:PORT --redis-url URL]`, where BASELINE is a
checkout of the commit to compare with (`git worktree add ../base COMMIT`).

Separate `python -m bench.pipeline` runs differ by ±10 % on a shared machine, more than most
changes move the pipeline, so one run of each side decides nothing. Here both sides share one stack
and alternate round by round (base-this, this-base, ...); each measurement runs in a child process
whose working directory is one checkout, so it imports that checkout's bench.pipeline and starts
that checkout's worker. Both sides read the same history, simulated once by this checkout (the
calendar fixes of later commits move some due dates, so each side's own simulator would not agree).
Each pair gives a ratio this/baseline, which cancels the slow drift a busy machine or a broker with
ever more topics adds; the summary is their median and spread. Besides events/s, the worker's CPU
time per event (from /proc), which a busy second core disturbs less.
The last line is one JSON object: per mode, both sides' medians and the ratios' median, min and max.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

MODES = ("single", "arrays", "latency", "drain")
SESSION_TIMEOUT = 10  # streams/app.py's broker_session_timeout, on every checkout so far
DRAIN_PAUSE_LIMIT = SESSION_TIMEOUT - 2  # the heartbeat that would have come meanwhile, and a margin
BETTER = {"eps": "higher", "worker_cpu_us_per_event": "lower", "p99_ms": "lower"}


def worker_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(mode: str, history_path: str, bootstrap: str, redis_url: str) -> dict[str, float]:
    """In the child: one measurement with the code of the working directory's checkout."""
    sys.path.insert(0, os.getcwd())  # the checkout in the working directory, not the installed one
    import asyncio

    from bench import pipeline as checkout_bench

    info = SimpleNamespace(bootstrap=bootstrap, redis_url=redis_url)
    log_dir = Path(os.environ.get("CHISO766_DATA", "/tmp/chiso766-data")) / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    if mode == "latency":
        p50, p99 = asyncio.run(checkout_bench.latency(info, log_dir))  # type: ignore[arg-type]
        return {"p50_ms": p50, "p99_ms": p99}
    history = Path(history_path).read_bytes().split(b"\n")
    catalogue = [line for line in history if b'"unit.upserted"' in line or b'"procedure.upserted"' in line]
    kept = set(catalogue)
    lines = [line for line in history if line not in kept]
    if mode == "drain":
        return drain(checkout_bench, info, catalogue, lines, log_dir)
    # The worker's CPU time between the end of the warm-up wait and the end of the measured one.
    # bench.pipeline waits twice through replay.wait_for (ready, then done), on every checkout so far.
    cpu_marks: list[float] = []
    wait_for = checkout_bench.replay.wait_for

    async def marking_wait_for(*args: object, **kwargs: Any) -> None:
        await wait_for(*args, **kwargs)
        cpu_marks.append(worker_cpu_seconds(kwargs["worker"].pid))

    checkout_bench.replay.wait_for = marking_wait_for
    eps, _ = checkout_bench.pipeline(info, catalogue, lines, log_dir, batched=mode == "arrays")  # type: ignore[arg-type]
    if len(cpu_marks) != 2:
        raise SystemExit(f"expected two waits in bench.pipeline, saw {len(cpu_marks)}")
    return {"eps": eps, "worker_cpu_us_per_event": (cpu_marks[1] - cpu_marks[0]) / len(lines) * 1e6}


def drain(checkout_bench: Any, info: SimpleNamespace, catalogue: list[bytes], lines: list[bytes],
          log_dir: Path) -> dict[str, float]:
    """The worker alone, CPU-bound: one-event messages published while it is paused (SIGSTOP) after
    its warm-up, then its time and CPU from SIGCONT until the closing watermark is projected. What
    `single` measures minus the producer racing the worker on the same cores. The pause lasts as
    long as publishing does, which must stay under the worker's consumer-group session timeout
    (10 s): past it the worker would be put out of the group and time its rejoining."""
    import asyncio
    import uuid

    replay = checkout_bench.replay
    settings = checkout_bench.Settings(info.bootstrap, info.redis_url, namespace=f"bench-drain-{uuid.uuid4().hex[:6]}")
    asyncio.run(replay.publish(settings, catalogue, watermark=False))
    worker = replay.start_worker(settings, "replay", str(log_dir / f"{settings.namespace}.log"))
    try:
        asyncio.run(checkout_bench.ready(settings, worker))
        os.kill(worker.pid, signal.SIGSTOP)
        paused = time.monotonic()
        try:
            asyncio.run(checkout_bench.produce_singles(settings.bootstrap, settings.topic("dossier-events"), lines))
            latest = max(int(checkout_bench.ev_decode(line).occurred_at.timestamp()) for line in lines)
            published = asyncio.run(replay.send_watermarks(settings, latest))
            cpu_before, started = worker_cpu_seconds(worker.pid), time.time()
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        if (pause := time.monotonic() - paused) > DRAIN_PAUSE_LIMIT:
            raise SystemExit(f"publishing took {pause:.1f}s, past the worker's {SESSION_TIMEOUT}s session "
                             "timeout: drain measures a worker that stays in its group; use fewer --dossiers")
        asyncio.run(replay.wait_for(settings, published, 1800, worker=worker, poll_seconds=0.005))
        cpu = worker_cpu_seconds(worker.pid) - cpu_before
        return {"eps": len(lines) / (time.time() - started), "worker_cpu_us_per_event": cpu / len(lines) * 1e6}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)


def run_child(checkout: Path, mode: str, history: Path, bootstrap: str, redis_url: str) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", mode, str(history), bootstrap, redis_url]
    child = subprocess.Popen(command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=900)
    except BaseException:  # stopped or timed out: the child stops its worker on SIGTERM, then goes
        child.terminate()
        child.wait(60)
        raise
    if child.returncode != 0:
        raise SystemExit(f"the measurement in {checkout} failed ({mode}):\n{err[-2000:]}")
    return orjson.loads(out.strip().splitlines()[-1])


def stop_on_sigterm() -> None:
    """SIGTERM as SystemExit, so the `finally` blocks stop the stack, the child and its worker."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
    ratios = [this / base for base, this in pairs]
    return {"baseline_median": round(statistics.median(base for base, _ in pairs), 1),
            "this_median": round(statistics.median(this for _, this in pairs), 1),
            "ratio_median": round(statistics.median(ratios), 4),
            "ratio_min": round(min(ratios), 4), "ratio_max": round(max(ratios), 4)}


def compare(baseline: Path, this: Path, modes: list[str], pairs: int, history: Path, bootstrap: str,
            redis_url: str) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for mode in modes:
        keys = ["p99_ms"] if mode == "latency" else ["eps", "worker_cpu_us_per_event"]
        measured_pairs: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
        for number in range(pairs):
            order = [("baseline", baseline), ("this", this)]
            measured: dict[str, dict[str, float]] = {}
            for side, checkout in order if number % 2 == 0 else order[::-1]:
                measured[side] = run_child(checkout, mode, history, bootstrap, redis_url)
            print(f"{mode:8} pair {number + 1:>2}:", "; ".join(
                f"{key} baseline {measured['baseline'][key]:,.1f} this {measured['this'][key]:,.1f} "
                f"ratio {measured['this'][key] / measured['baseline'][key]:.3f}" for key in keys), flush=True)
            for key in keys:
                measured_pairs[key].append((measured["baseline"][key], measured["this"][key]))
        results[mode] = {key: summary(measured_pairs[key]) for key in keys}
        for key in keys:
            print(f"{mode:8} {key} ({BETTER[key]} is better): this/baseline median "
                  f"{results[mode][key]['ratio_median']:.3f} (range {results[mode][key]['ratio_min']:.3f}–"
                  f"{results[mode][key]['ratio_max']:.3f})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument("--this", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout measured against the baseline (default: the one holding this file)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--dossiers", type=int, default=8000)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--bootstrap", help="a running stack's Kafka (with --redis-url) instead of a stack of its own")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    stop_on_sigterm()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or (unknown := [mode for mode in modes if mode not in MODES]):
        parser.error(f"unknown mode {', '.join(unknown) if modes else '(none)'}; choose from {', '.join(MODES)}")
    for checkout in (args.baseline, args.this):
        if not (checkout / "bench" / "pipeline.py").is_file():
            parser.error(f"{checkout} is not a chiso766 checkout with bench/pipeline.py")
    if args.pairs < 2:
        parser.error("--pairs must be at least 2: one pair tells noise from change no better than one run")
    if args.dossiers < 1:
        parser.error("--dossiers must be at least 1")
    if bool(args.bootstrap) != bool(args.redis_url):
        parser.error("--bootstrap and --redis-url go together")

    from support import stack
    from support.resources import load_calendar
    from support.simulate import Simulator

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chiso766-ab-") as scratch:
        history = Path(scratch) / "history.jsonl"
        history.write_bytes(b"\n".join(Simulator(766, args.dossiers, calendar=load_calendar(), days=120).events()))
        checkouts = (args.baseline.resolve(), args.this.resolve())
        if args.bootstrap:
            results = compare(*checkouts, modes, args.pairs, history, args.bootstrap, args.redis_url)
        else:
            name = f"bench-ab-{os.getpid()}"
            info = stack.up(name)
            try:
                results = compare(*checkouts, modes, args.pairs, history, info.bootstrap, info.redis_url)
            finally:
                stack.down(name)
    print(f"{args.pairs} pairs per mode, {time.monotonic() - started:.0f} s")
    print(orjson.dumps(results).decode())


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--measure":
        stop_on_sigterm()
        print(orjson.dumps(measure(*sys.argv[2:])).decode())
    else:
        main()
