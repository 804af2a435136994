"""Faults at the scale users run: a 3-broker KRaft cluster, Redis, workers — each case ends with the
Redis projection equal to `chiso766 score` of the same history, and says how long it took.

Cases (each in a namespace of its own, on one stack started for the run):
  fresh_replay          `chiso766 replay --wait` of the whole history on the fresh cluster (its own worker)
  two_workers           two workers sharing the partitions from the start
  join_mid_replay       a second worker joins halfway through
  sigkill_mid_replay    one of two workers SIGKILLed halfway through; the other takes its partitions
  broker_restart        the leader of dossier partition 0 SIGKILLed halfway, the rest published with
                        a broker down, then the broker restarted with its data
  redis_restart         Redis SIGKILLed while `replay --wait` runs, restarted with its data (append-only file)
  redis_wiped           Redis SIGKILLed halfway and restarted empty: the workers notice and rebuild
  live_steady           a live worker fed the history at a steady rate for about a minute
and the stop cases: SIGTERM / SIGINT to a worker starting up, consuming, waiting on a dead Redis,
and waiting on stopped brokers, each timed to the process's exit.

A case's time is from the end of its fault (or of publishing, when there is none) to the first
poll that finds the projection equal to the batch report: `converge_s`.

Run: `python -m bench.chaos [--dossiers N] [--cases a,b,…]` (starts its own stack, stops it after).
The last line is one JSON object: case → seconds. It drives the stack, the workers, `score` and
`replay` through the `chiso766` command, as an operator would; `tests/integration/test_faults.py`
runs the same cases and asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import redis

from contracts.keys import RedisKeys
from streams import replay
from streams.config import Settings

PERIODS = ("year:2026", "quarter:2026-Q2", "month:2026-05")
WORKER_TICK = "1"  # heartbeats and a restarted Redis noticed within a second or two
CONVERGE_TIMEOUT = 300.0


def chiso766(*args: str, env: dict | None = None, timeout: float = 600, check: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.app", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise AssertionError(f"chiso766 {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


class Cluster:
    """A running local stack, driven through `chiso766 stack`."""

    def __init__(self, name: str):
        self.name = name
        self.refresh()

    @classmethod
    def up(cls, name: str, brokers: int = 3) -> Cluster:
        chiso766("stack", "up", "--name", name, "--brokers", str(brokers), "--persist-redis", timeout=400)
        return cls(name)

    def refresh(self) -> None:
        status = orjson.loads(chiso766("stack", "status", "--name", self.name, check=False) or b"{}")
        self.bootstrap, self.redis_url = status["bootstrap"], status["redis_url"]
        self.brokers = {broker["node"]: broker for broker in status["brokers"]}

    def down(self) -> None:
        chiso766("stack", "down", "--name", self.name, check=False, timeout=120)

    def kill(self, node: str, sig: str = "KILL") -> None:
        chiso766("stack", "kill", "--name", self.name, "--node", node, "--signal", sig)

    def start(self, node: str, wipe: bool = False) -> None:
        chiso766("stack", "start", "--name", self.name, "--node", node, *(["--wipe"] if wipe else []), timeout=300)
        self.refresh()

    def env(self, data_dir: Path) -> dict[str, str]:
        return {"CHISO766_BOOTSTRAP": self.bootstrap, "CHISO766_REDIS_URL": self.redis_url,
                "CHISO766_DATA": str(data_dir)}

    def settings(self, namespace: str) -> Settings:
        return Settings(bootstrap=self.bootstrap, redis_url=self.redis_url, namespace=namespace)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=10, socket_connect_timeout=5)

    def leader_of(self, topic: str, partition: int) -> int:
        async def ask() -> int:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                for described in await admin.describe_topics([topic]):
                    for entry in described["partitions"]:
                        if entry["partition"] == partition:
                            return entry["leader"]
            finally:
                await admin.close()
            raise LookupError(f"{topic}:{partition} has no leader")

        return asyncio.run(ask())


class Worker:
    """A `chiso766 worker` process in its own process group."""

    def __init__(self, cluster: Cluster, namespace: str, workdir: Path, mode: str = "replay",
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.namespace = namespace
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{namespace}-worker-{uuid.uuid4().hex[:6]}.log"
        self.log = self.log_path.open("ab")
        command = [sys.executable, "-m", "cli.app", "worker", "--namespace", namespace, "--mode", mode,
                   "--tick", WORKER_TICK, *extra]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env={**os.environ, **cluster.env(workdir / "data"), **(env or {})})

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int | None, float]:
        """Signal the worker and wait for it; returns its exit status (None if it had to be SIGKILLed
        after `timeout`) and the seconds it took to exit."""
        started = time.monotonic()
        status: int | None
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                status = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
                status = None
        else:
            status = self.process.returncode
        self.log.close()
        return status, time.monotonic() - started


class Chaos:
    """One history on one cluster: its batch reports, and the checks every case ends with."""

    def __init__(self, cluster: Cluster, workdir: Path, history: Path):
        self.cluster, self.workdir, self.history = cluster, workdir, history
        self.lines = history.read_bytes().splitlines()
        self.latest = 0
        self._expected: dict[tuple[str, str | None], dict] = {}
        self.workers: list[Worker] = []

    # Expected and actual.

    def expected(self, as_of: str | None = None) -> dict[str, dict]:
        """`chiso766 score --json` of the history for each period, as of the latest event or `as_of`."""
        return {period: self.expected_period(period, as_of) for period in PERIODS}

    def expected_period(self, period: str, as_of: str | None = None) -> dict:
        if (period, as_of) not in self._expected:
            options = ("--as-of", as_of) if as_of else ()
            self._expected[(period, as_of)] = orjson.loads(
                chiso766("score", str(self.history), "--period", period, "--json", *options))
        return self._expected[(period, as_of)]

    def projection(self, namespace: str, client: redis.Redis | None = None) -> dict[str, dict | None]:
        client = client or self.cluster.redis()
        found: dict[str, dict | None] = {}
        keys = RedisKeys(namespace)
        for period in PERIODS:
            meta = client.hgetall(keys.meta(period))
            if not meta:
                found[period] = None
                continue
            units = sorted((orjson.loads(value) for value in client.hvals(keys.scores(period))),
                           key=lambda unit: unit["code"])
            found[period] = {"as_of": meta[b"as_of"].decode(), "units": units}
        return found

    def differences(self, namespace: str, expected: dict[str, dict] | None = None,
                    client: redis.Redis | None = None) -> list[str]:
        """What differs between the projection and the batch report ([] when they are equal)."""
        expected = expected or self.expected()
        actual = self.projection(namespace, client)
        problems = []
        for period in PERIODS:
            want, got = expected[period], actual[period]
            if got is None:
                problems.append(f"{period}: no scores")
                continue
            if got["as_of"] != want["as_of"]:
                problems.append(f"{period}: as_of {got['as_of']} != {want['as_of']}")
            if [u["code"] for u in got["units"]] != [u["code"] for u in want["units"]]:
                problems.append(f"{period}: units {len(got['units'])} != {len(want['units'])}")
                continue
            problems += [f"{period} {a['code']} differs" for a, b in zip(got["units"], want["units"], strict=True)
                         if a != b][:3]
        return problems

    def converge(self, namespace: str, since: float, timeout: float = CONVERGE_TIMEOUT,
                 expected: dict[str, dict] | None = None) -> float:
        """Poll until the projection equals the batch report; seconds from `since` (a monotonic
        instant) to the first equal poll. Raises AssertionError with the differences otherwise."""
        client = self.cluster.redis()
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        while time.monotonic() < deadline:
            try:
                problems = self.differences(namespace, expected, client)
            except redis.RedisError as error:  # a case that restarts Redis polls through it
                problems = [f"redis: {error}"]
            if not problems:
                return time.monotonic() - since
            for worker in self.workers:
                if worker.namespace == namespace and worker.process.poll() not in (None, 0):
                    raise AssertionError(f"worker exited with {worker.process.returncode}; see {worker.log_path}")
            time.sleep(0.25)
        raise AssertionError(f"{namespace} did not converge in {timeout:.0f}s: {problems[:10]}")

    # Driving a namespace.

    def worker(self, namespace: str, mode: str = "replay", extra: tuple[str, ...] = (),
               env: dict[str, str] | None = None) -> Worker:
        worker = Worker(self.cluster, namespace, self.workdir, mode, extra, env)
        self.workers.append(worker)
        return worker

    def publish(self, namespace: str, lines: list[bytes], rate: float | None = None) -> None:
        published = asyncio.run(replay.publish(self.cluster.settings(namespace), lines, watermark=False, rate=rate))
        self.latest = max(self.latest, published.latest)

    def close(self, namespace: str, timeout: float = CONVERGE_TIMEOUT) -> None:
        """The closing watermarks, and the wait until every source got through them."""
        async def run() -> None:
            settings = self.cluster.settings(namespace)
            closing = await replay.send_watermarks(settings, self.latest)
            await replay.wait_for(settings, closing, timeout)

        asyncio.run(run())

    def halves(self) -> tuple[list[bytes], list[bytes]]:
        half = len(self.lines) // 2
        return self.lines[:half], self.lines[half:]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"never: {what}")
            time.sleep(0.1)

    def wait_consuming(self, namespace: str) -> None:
        client = self.cluster.redis()
        self.wait_for(f"{namespace} consuming", lambda: bool(client.exists(RedisKeys(namespace).sources)))

    def heartbeats(self, namespace: str) -> list[dict]:
        client = self.cluster.redis()
        return [orjson.loads(value) for key in client.scan_iter(RedisKeys(namespace).worker_beat("*"))
                if (value := client.get(key)) is not None]

    def wait_workers(self, namespace: str, count: int) -> None:
        self.wait_for(f"{count} workers of {namespace}", lambda: len(self.heartbeats(namespace)) >= count)

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


def namespace(case: str) -> str:
    return f"{case.replace('_', '-')}-{uuid.uuid4().hex[:4]}"


# The cases: each returns its timings, `converge_s` first; each raises AssertionError when the
# projection does not end equal to the batch report.

def fresh_replay(chaos: Chaos) -> dict[str, float]:
    ns = namespace("fresh")
    started = time.monotonic()
    chiso766("replay", str(chaos.history), "--namespace", ns, "--wait", "--timeout", "600",
             env=chaos.cluster.env(chaos.workdir / "data"))
    converge = chaos.converge(ns, started)  # from the command's start: it publishes, and waits
    replayed = time.monotonic()
    leftovers = [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                 .splitlines() if f"--namespace {ns} " in line + " " and " worker " in line]
    assert not leftovers, f"replay --wait left its worker running: {leftovers}"
    return {"converge_s": converge, "replay_wait_s": replayed - started}  # the same, give or take a poll


def two_workers(chaos: Chaos) -> dict[str, float]:
    ns = namespace("two_workers")
    chaos.worker(ns), chaos.worker(ns)
    chaos.wait_workers(ns, 2)
    started = time.monotonic()
    chaos.publish(ns, chaos.lines)
    published = time.monotonic()
    chaos.close(ns)
    converge = chaos.converge(ns, published)
    shares = [sum(offset for key, offset in beat["positions"].items() if key.startswith("dossier-events"))
              for beat in chaos.heartbeats(ns)]
    assert len(shares) == 2 and all(shares), f"the partitions were not shared: {shares}"
    chaos.stop_all()
    return {"converge_s": converge, "total_s": time.monotonic() - started}


def join_mid_replay(chaos: Chaos) -> dict[str, float]:
    ns = namespace("join")
    first, second = chaos.halves()
    chaos.worker(ns)
    started = time.monotonic()
    chaos.publish(ns, first)
    chaos.wait_consuming(ns)
    chaos.worker(ns)
    chaos.publish(ns, second)
    published = time.monotonic()
    chaos.close(ns)
    converge = chaos.converge(ns, published)
    chaos.wait_workers(ns, 2)
    chaos.stop_all()
    return {"converge_s": converge, "total_s": time.monotonic() - started}


def sigkill_mid_replay(chaos: Chaos) -> dict[str, float]:
    ns = namespace("sigkill")
    first, second = chaos.halves()
    survivor, victim = chaos.worker(ns), chaos.worker(ns)
    chaos.wait_workers(ns, 2)
    started = time.monotonic()
    chaos.publish(ns, first)
    chaos.wait_consuming(ns)
    victim.stop(signal.SIGKILL)
    chaos.workers.remove(victim)
    killed = time.monotonic()
    chaos.publish(ns, second)
    chaos.close(ns)
    converge = chaos.converge(ns, killed)
    assert survivor.process.poll() is None
    chaos.stop_all()
    return {"converge_s": converge, "total_s": time.monotonic() - started}


def broker_restart(chaos: Chaos) -> dict[str, float]:
    ns = namespace("broker")
    first, second = chaos.halves()
    chaos.worker(ns)
    started = time.monotonic()
    chaos.publish(ns, first)
    chaos.wait_consuming(ns)
    node = f"kafka-{chaos.cluster.leader_of(f'{ns}.dossier-events', 0)}"
    chaos.cluster.kill(node)
    chaos.publish(ns, second)  # one broker down: min.insync.replicas 2 of 3 still holds
    chaos.cluster.start(node)
    restarted = time.monotonic()
    chaos.close(ns)
    converge = chaos.converge(ns, restarted)
    chaos.stop_all()
    return {"converge_s": converge, "total_s": time.monotonic() - started}


def redis_restart(chaos: Chaos) -> dict[str, float]:
    """`replay --wait` and its worker both live through a Redis crash (with its data)."""
    ns = namespace("redis_restart")
    data = chaos.workdir / "data"
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "cli.app", "replay", str(chaos.history), "--namespace", ns,
                                "--wait", "--timeout", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, **chaos.cluster.env(data)}, start_new_session=True)
    try:
        client = chaos.cluster.redis()
        chaos.wait_for(f"{ns} worker heartbeat", lambda: bool(client.exists(RedisKeys(ns).worker)))
        chaos.cluster.kill("redis")
        time.sleep(5)  # the worker waits on Redis, and so does replay --wait once it has published
        chaos.cluster.start("redis")
        restarted = time.monotonic()
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"replay --wait failed ({process.returncode}):\n{stderr.decode()[-3000:]}"
        assert "Traceback" not in stderr.decode(), stderr.decode()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return {"converge_s": chaos.converge(ns, restarted), "total_s": time.monotonic() - started}


def redis_wiped(chaos: Chaos) -> dict[str, float]:
    ns = namespace("redis_wiped")
    first, second = chaos.halves()
    chaos.worker(ns)
    started = time.monotonic()
    chaos.publish(ns, first)
    chaos.wait_consuming(ns)
    chaos.cluster.kill("redis")
    time.sleep(2)
    chaos.cluster.start("redis", wipe=True)
    restarted = time.monotonic()
    chaos.publish(ns, second)
    chaos.close(ns)
    converge = chaos.converge(ns, restarted)
    chaos.stop_all()
    return {"converge_s": converge, "total_s": time.monotonic() - started}


def live_steady(chaos: Chaos, seconds: float = 60.0) -> dict[str, float]:
    """A live worker fed at a steady rate; stopped once caught up, then compared with the batch
    report as of the instant its projection was scored at."""
    ns = namespace("live")
    worker = chaos.worker(ns, mode="live")
    chaos.wait_workers(ns, 1)
    rate = len(chaos.lines) / seconds
    started = time.monotonic()
    chaos.publish(ns, chaos.lines, rate=rate)
    fed = time.monotonic()

    def caught_up() -> bool:
        beats = chaos.heartbeats(ns)
        return bool(beats) and beats[0]["behind"] == 0 and beats[0]["at"] > time.time() - 2 and \
            beats[0]["messages"] > 0 and time.time() - (beats[0]["last_batch_at"] or 0) > 1.5

    chaos.wait_for(f"{ns} caught up", caught_up, timeout=CONVERGE_TIMEOUT)
    # Every period is rescored with the clock at least every 10 s (streams/app.py FULL_RESCORE_SECONDS).
    time.sleep(11)
    caught = time.monotonic()
    status, _ = worker.stop()
    chaos.workers.remove(worker)
    assert status == 0, f"the live worker exited with {status}"
    # A live worker rescores a period when its tallies change or its clock moves, so each period
    # is compared with the batch report as of the instant it was last scored at.
    scored = chaos.projection(ns)
    assert all(scored.values()), f"periods without scores: {[p for p, r in scored.items() if not r]}"
    chaos.converge(ns, caught, timeout=5, expected={period: chaos.expected_period(period, report["as_of"])
                                                    for period, report in scored.items() if report})
    return {"converge_s": caught - fed - 11, "feed_s": fed - started, "rate_eps": rate}


def stop_in_state(chaos: Chaos, state: str, sig: int = signal.SIGTERM) -> float:
    """Seconds from the signal to the worker's exit, in `state`: starting, consuming, redis_down,
    brokers_stopped. Raises AssertionError when it did not exit within 30 s."""
    ns = namespace(f"stop_{state}")
    first, _ = chaos.halves()
    worker = chaos.worker(ns)
    repairs: list[tuple[str, str]] = []  # (node, what brings it back)
    try:
        if state == "starting":
            time.sleep(1.0)
        else:
            chaos.wait_workers(ns, 1)
            chaos.publish(ns, first)
            chaos.wait_consuming(ns)
        if state == "redis_down":
            chaos.cluster.kill("redis")
            repairs.append(("redis", "start"))
        elif state == "brokers_stopped":
            for node in chaos.cluster.brokers:
                chaos.cluster.kill(f"kafka-{node}", "STOP")
                repairs.append((f"kafka-{node}", "CONT"))
        time.sleep(2)  # the worker meets the fault
        status, seconds = worker.stop(sig, timeout=30)
        chaos.workers.remove(worker)
        assert status is not None, f"{state}: the worker ignored {signal.Signals(sig).name} for 30 s"
        return seconds
    finally:
        for node, action in repairs:
            if action == "start":
                chaos.cluster.start(node)
            else:
                chaos.cluster.kill(node, action)


CASES: dict[str, Callable[[Chaos], dict[str, float]]] = {
    "fresh_replay": fresh_replay, "two_workers": two_workers, "join_mid_replay": join_mid_replay,
    "sigkill_mid_replay": sigkill_mid_replay, "broker_restart": broker_restart, "redis_restart": redis_restart,
    "redis_wiped": redis_wiped, "live_steady": live_steady,
}
STOPS = [("starting", signal.SIGTERM), ("consuming", signal.SIGTERM), ("consuming", signal.SIGINT),
         ("redis_down", signal.SIGTERM), ("brokers_stopped", signal.SIGTERM), ("brokers_stopped", signal.SIGINT)]


def simulate(path: Path, dossiers: int, seed: int = 10) -> Path:
    chiso766("simulate", "--seed", str(seed), "--dossiers", str(dossiers), "--days", "200", "--out", str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=3000)
    parser.add_argument("--cases", default=",".join([*CASES, "stops"]),
                        help="comma-separated: " + ", ".join([*CASES, "stops"]))
    args = parser.parse_args()
    wanted = args.cases.split(",")
    unknown = set(wanted) - {*CASES, "stops"}
    if unknown:
        parser.error(f"unknown cases: {sorted(unknown)}")
    workdir = Path(tempfile.mkdtemp(prefix="chiso766-chaos-"))
    history = simulate(workdir / "history.jsonl", args.dossiers)
    started = time.monotonic()
    cluster = Cluster.up(f"chaos-{os.getpid()}")
    print(f"3-broker stack up in {time.monotonic() - started:.1f}s; history {history} "
          f"({len(history.read_bytes().splitlines()):,} events); logs in {workdir}", flush=True)
    chaos = Chaos(cluster, workdir, history)
    chaos.expected()
    times: dict[str, float] = {}
    try:
        for case in wanted:
            if case == "stops":
                for state, sig in STOPS:
                    key = f"stop_{state}_{signal.Signals(sig).name.lower()}_s"
                    times[key] = round(stop_in_state(chaos, state, sig), 2)
                    print(f"{key:<34} {times[key]:6.2f}s", flush=True)
                continue
            result = CASES[case](chaos)
            times[case] = round(result["converge_s"], 2)
            details = ", ".join(f"{key} {value:.1f}" for key, value in result.items() if key != "converge_s")
            print(f"{case:<20} converged in {result['converge_s']:6.2f}s ({details})", flush=True)
    finally:
        chaos.stop_all()
        cluster.down()
    print(orjson.dumps(times).decode())


if __name__ == "__main__":
    main()
