"""Is this checkout's pipeline slower than another's? bench.pipeline's measurements, alternated.

Run: `python -m bench.pipeline_ab BASELINE [--this CHECKOUT] [--pairs 8] [--dossiers 8000]
[--modes single,arrays,latency,drain] [--bootstrap HOST:PORT --redis-url URL]`, where BASELINE is a
checkout of the commit to compare with (`git worktree add ../base COMMIT`).

Separate `python -m bench.pipeline` runs differ by ±10 % on a shared machine, more than most
changes move the pipeline, so one run of each side decides nothing. Here both sides share one stack
and alternate round by round (base-this, this-base, ...); each measurement runs in a child process
whose working directory is one checkout, so it imports that checkout's bench.pipeline and starts
that checkout's worker. Both sides read the same history, simulated once by the checkout holding
this file (the calendar fixes of later commits move some due dates, so each side's own simulator
would not agree). Each pair gives a ratio this/baseline, which cancels the slow drift a busy
machine or a broker with ever more topics adds; the summary is their median and spread. Besides
events/s (`eps`), the worker's CPU time per event (`worker_cpu_us_per_event`, from /proc, in 10 ms
ticks), which a busy second core disturbs less; `latency` gives `p99_ms`. An even number of pairs
gives each side the first turn equally often.
The first lines name both checkouts (path, commit, uncommitted changes); the last line is one JSON
object: the checkouts, pairs, dossiers, and per mode and measure both sides' medians and the
ratios' median, min and max. Worker logs stay in $CHISO766_DATA/bench; on a stack passed with
--bootstrap the bench-* namespaces (topics, Redis keys) stay too: use a stack you can throw away.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
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
LOG_DIR = Path(os.environ.get("CHISO766_DATA", "/tmp/chiso766-data")) / "bench"  # where bench.pipeline logs
MAX_DOSSIERS = 100_000  # ~1.2 M events; the history is held in memory by this process and each child
BETTER = {"eps": "higher", "worker_cpu_us_per_event": "lower", "p99_ms": "lower"}


def worker_cpu_seconds(pid: int) -> float:
    """bench.api.cpu_seconds, repeated on purpose: this file imports nothing of the `bench` package,
    which in a child is the measured checkout's (an older one has no such function)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(mode: str, history_path: str, bootstrap: str, redis_url: str) -> dict[str, float]:
    """In the child: one measurement with the code of the working directory's checkout."""
    sys.path.insert(0, os.getcwd())  # the checkout in the working directory, not the installed one
    import asyncio

    from bench import pipeline as checkout_bench

    info = SimpleNamespace(bootstrap=bootstrap, redis_url=redis_url)
    log_dir = LOG_DIR
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
    cpu = cpu_marks[1] - cpu_marks[0]
    return {"eps": eps, "worker_cpu_us_per_event": cpu / len(lines) * 1e6, "worker_cpu_s": cpu}


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
            raise SystemExit(f"publishing took {pause:.1f}s; drain needs it under {DRAIN_PAUSE_LIMIT}s (the "
                             f"worker's group session timeout is {SESSION_TIMEOUT}s): use fewer --dossiers")
        # Checkouts older than the replay's fast polling still take their default.
        fast = {"poll_seconds": 0.005} if "poll_seconds" in inspect.signature(replay.wait_for).parameters else {}
        asyncio.run(replay.wait_for(settings, published, 1800, worker=worker, **fast))
        cpu = worker_cpu_seconds(worker.pid) - cpu_before
        return {"eps": len(lines) / (time.time() - started), "worker_cpu_us_per_event": cpu / len(lines) * 1e6,
                "worker_cpu_s": cpu}
    finally:
        # bench.pipeline.stop_process_group, which older checkouts lack.
        with contextlib.suppress(ProcessLookupError):  # a worker that died: the error says why
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)


NEEDS = {  # what each mode calls in a checkout's bench.pipeline (and its streams.replay)
    "single": ("pipeline",), "arrays": ("pipeline",), "latency": ("latency",),
    "drain": ("ready", "produce_singles", "ev_decode", "Settings", "replay.publish", "replay.start_worker",
              "replay.send_watermarks", "replay.wait_for"),
}


def check(modes: str) -> None:
    """In the child: exit 1 naming what this checkout's bench.pipeline lacks for `modes`."""
    sys.path.insert(0, os.getcwd())
    from bench import pipeline as checkout_bench

    def has(dotted: str) -> bool:
        owner: Any = checkout_bench
        for name in dotted.split("."):
            owner = getattr(owner, name, None)
        return owner is not None

    if missing := [f"{mode} needs bench.pipeline.{name}" for mode in modes.split(",") for name in NEEDS[mode]
                   if not has(name)]:
        raise SystemExit("; ".join(missing))


def child_command(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *args]


def check_checkout(checkout: Path, modes: list[str]) -> str | None:
    done = subprocess.run(child_command("--check", ",".join(modes)), cwd=checkout, capture_output=True, text=True,
                          timeout=120, check=False)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["exit status 1"])[-1]


def describe(checkout: Path) -> dict[str, str | bool]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    return {"path": str(checkout), "commit": commit or "not a git checkout",
            "uncommitted_changes": bool(commit and git("status", "--porcelain", "--untracked-files=no"))}


def run_child(checkout: Path, mode: str, history: Path, bootstrap: str, redis_url: str) -> dict[str, float]:
    child = subprocess.Popen(child_command("--measure", mode, str(history), bootstrap, redis_url), cwd=checkout,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=900)
    except BaseException:  # stopped or timed out: the child stops its worker on SIGTERM, then goes
        child.terminate()
        child.wait(60)
        raise
    if child.returncode != 0:
        raise SystemExit(f"the measurement in {checkout} failed ({mode}):\n{err[-2000:]}")
    return orjson.loads(out.strip().splitlines()[-1])


def run_measure(args: list[str]) -> None:
    """The child's entry: the measurement's JSON on stdout, or a traceback ending in one plain line."""
    try:
        print(orjson.dumps(measure(*args)).decode())
    except Exception as error:
        import traceback

        traceback.print_exc()
        sys.exit(f"error: {error or type(error).__name__} (worker logs: {LOG_DIR})")


def stop_on_sigterm() -> None:
    """SIGTERM as SystemExit, so the `finally` blocks stop the stack, the child and its worker."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def summary(pairs: list[tuple[float, float]]) -> dict[str, float]:
    ratios = [this / base if base else float("nan") for base, this in pairs]
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
        shortest_cpu = float("inf")
        for number in range(pairs):
            order = [("baseline", baseline), ("this", this)]
            measured: dict[str, dict[str, float]] = {}
            for side, checkout in order if number % 2 == 0 else order[::-1]:
                measured[side] = run_child(checkout, mode, history, bootstrap, redis_url)
                shortest_cpu = min(shortest_cpu, measured[side].get("worker_cpu_s", shortest_cpu))
            print(f"{mode:8} pair {number + 1:>2}:", "; ".join(
                f"{key} baseline {measured['baseline'][key]:,.1f} this {measured['this'][key]:,.1f} "
                f"ratio {ratio_text(measured['baseline'][key], measured['this'][key])}" for key in keys), flush=True)
            for key in keys:
                measured_pairs[key].append((measured["baseline"][key], measured["this"][key]))
        results[mode] = {key: summary(measured_pairs[key]) for key in keys}
        for key in keys:
            print(f"{mode:8} {key} ({BETTER[key]} is better): this/baseline median "
                  f"{results[mode][key]['ratio_median']:.3f} (range {results[mode][key]['ratio_min']:.3f}–"
                  f"{results[mode][key]['ratio_max']:.3f})", flush=True)
        if shortest_cpu < 1.0:
            print(f"{mode:8} note: a worker used {shortest_cpu:.2f}s of CPU, counted in 10 ms ticks; its CPU "
                  "ratio is coarse — use more --dossiers", flush=True)
    return results


def ratio_text(base: float, this: float) -> str:
    return f"{this / base:.3f}" if base else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument("--this", type=Path, default=TOOL_CHECKOUT,
                        help="the checkout measured against the baseline (default: the one holding this file)")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per mode; an even number balances who goes first")
    parser.add_argument("--dossiers", type=int, default=8000, help=f"simulated dossiers, 1 to {MAX_DOSSIERS:,}")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--bootstrap", help="a running stack's Kafka (with --redis-url) instead of a stack of its own")
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    stop_on_sigterm()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or (unknown := [mode for mode in modes if mode not in MODES]):
        parser.error(f"unknown mode {', '.join(unknown) if modes else '(none)'}; choose from {', '.join(MODES)}")
    if len(set(modes)) != len(modes):
        parser.error(f"a mode given twice in {args.modes!r}: each runs once, with --pairs pairs")
    for checkout in (args.baseline, args.this):
        if not (checkout / "bench" / "pipeline.py").is_file():
            parser.error(f"{checkout} is not a chiso766 checkout with bench/pipeline.py")
    if args.pairs < 2:
        parser.error("--pairs must be at least 2: one pair tells noise from change no better than one run")
    if not 1 <= args.dossiers <= MAX_DOSSIERS:
        parser.error(f"--dossiers must be between 1 and {MAX_DOSSIERS:,}")
    if bool(args.bootstrap) != bool(args.redis_url):
        parser.error("--bootstrap and --redis-url go together")
    try:
        compare_checkouts(args, modes)
    except KeyboardInterrupt:  # its stack, child and worker are stopped by then
        print("stopped", file=sys.stderr)
        sys.exit(130)


def compare_checkouts(args: argparse.Namespace, modes: list[str]) -> None:
    sys.path.insert(0, str(TOOL_CHECKOUT))  # its own support/, not an installed chiso766's
    from support import stack
    from support.resources import load_calendar
    from support.simulate import Simulator

    checkouts = {"baseline": args.baseline.resolve(), "this": args.this.resolve()}
    for side, checkout in checkouts.items():
        described = describe(checkout)
        print(f"{side:8} {described['path']} at {described['commit']}"
              f"{' with uncommitted changes' if described['uncommitted_changes'] else ''}", flush=True)
        if problem := check_checkout(checkout, modes):
            sys.exit(f"{side} checkout {checkout} cannot run {', '.join(modes)}: {problem}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chiso766-ab-") as scratch:
        print(f"simulating {args.dossiers:,} dossiers…", file=sys.stderr, flush=True)
        history = Path(scratch) / "history.jsonl"
        history.write_bytes(b"\n".join(Simulator(766, args.dossiers, calendar=load_calendar(), days=120).events()))
        both = (checkouts["baseline"], checkouts["this"])
        if args.bootstrap:
            results = compare(*both, modes, args.pairs, history, args.bootstrap, args.redis_url)
        else:
            name = f"bench-ab-{os.getpid()}"
            info = stack.up(name)
            try:
                results = compare(*both, modes, args.pairs, history, info.bootstrap, info.redis_url)
            finally:
                stack.down(name)
    print(f"{args.pairs} pairs per mode, {time.monotonic() - started:.0f} s")
    print(orjson.dumps({"checkouts": {side: describe(path) for side, path in checkouts.items()},
                        "pairs": args.pairs, "dossiers": args.dossiers, **results}).decode())


TOOL_CHECKOUT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--measure":
        stop_on_sigterm()
        run_measure(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        main()
