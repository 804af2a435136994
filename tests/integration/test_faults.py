"""The fault suite (issue 10, point 8): a 3-broker KRaft cluster and a Redis with an append-only
file, started once for this module; every case ends with the Redis projection equal to
`chiso766 score` of the same history. The cases themselves live in `bench.chaos`, which times them
(`python -m bench.chaos`); here they are asserted on.

Marked `faults`; the minute-long live feed is also marked `slow` (see the README for what CI runs).
"""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from bench import chaos as cases
from contracts.keys import RedisKeys
from streams import replay

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory) -> cases.Chaos:
    workdir = tmp_path_factory.mktemp("chaos")
    history = cases.simulate(workdir / "history.jsonl", 2000)
    cluster = cases.Cluster.up(f"faults-{time.time_ns() % 10**8}")
    run = cases.Chaos(cluster, workdir, history)
    try:
        run.expected()
        yield run
    finally:
        run.stop_all()
        cluster.down()


def report(case: str, timings: dict[str, float]) -> None:
    print(f"\n{case}: " + ", ".join(f"{key} {value:.2f}" for key, value in timings.items()))


# First: the replay that used to stall for good on a fresh broker, as it was reported.
def test_the_first_replay_on_a_fresh_cluster_finishes_and_leaves_no_worker(chaos):
    report("fresh_replay", cases.fresh_replay(chaos))


def test_topics_have_three_copies_and_two_in_sync(chaos):
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    namespace = cases.namespace("copies")
    asyncio.run(replay.ensure_topics(chaos.cluster.settings(namespace)))

    async def look() -> tuple[dict[str, set[int]], dict[str, str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=chaos.cluster.bootstrap)
        await admin.start()
        try:
            topics = [name for name in await admin.list_topics() if name.startswith(namespace)]
            copies = {entry["topic"]: {len(p["replicas"]) for p in entry["partitions"]}
                      for entry in await admin.describe_topics(topics)}
            described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                                     {"min.insync.replicas": None})
                                                      for name in topics])
            in_sync = {resource[3]: value for response in described for resource in response.resources
                       for name, value, *_ in resource[4] if name == "min.insync.replicas"}
            return copies, in_sync
        finally:
            await admin.close()

    copies, in_sync = asyncio.run(look())
    assert len(copies) == 5 and all(found == {3} for found in copies.values()), copies
    assert set(in_sync.values()) == {"2"}, in_sync


def test_two_workers_share_the_partitions(chaos):
    report("two_workers", cases.two_workers(chaos))


def test_a_worker_joining_mid_replay(chaos):
    report("join_mid_replay", cases.join_mid_replay(chaos))


def test_a_worker_sigkilled_mid_replay(chaos):
    report("sigkill_mid_replay", cases.sigkill_mid_replay(chaos))


def test_a_broker_killed_and_restarted_mid_replay(chaos):
    report("broker_restart", cases.broker_restart(chaos))


def test_redis_killed_and_restarted_with_its_data_while_replay_waits(chaos):
    report("redis_restart", cases.redis_restart(chaos))


def test_redis_restarted_without_its_data_is_rebuilt(chaos):
    report("redis_wiped", cases.redis_wiped(chaos))


def test_a_replay_watermark_and_a_rebuild_in_one_batch_both_report(chaos):
    """Both controls are in the topics before the worker starts, so its first batch holds them."""
    namespace = cases.namespace("two_controls")
    chaos.publish(namespace, chaos.lines)
    settings = chaos.cluster.settings(namespace)
    closing = asyncio.run(replay.send_watermarks(settings, chaos.latest))
    rebuild = asyncio.run(replay.send_watermarks(settings, 0, kind="rebuild"))
    chaos.worker(namespace)
    for published in (closing, rebuild):
        asyncio.run(replay.wait_for(settings, published, 300))
    chaos.converge(namespace, time.monotonic())
    chaos.stop_all()


def test_the_heartbeat_says_stalled_while_redis_hangs_and_advancing_after(chaos):
    from support.stack import free_port

    namespace = cases.namespace("heartbeat")
    first, second = chaos.halves()
    port = free_port()
    chaos.worker(namespace, extra=("--metrics-port", str(port)), env={"CHISO766_STALL_SECONDS": "3"})
    chaos.publish(namespace, first)
    chaos.wait_consuming(namespace)

    def advancing() -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        return float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("chiso766_worker_advancing ")))

    chaos.wait_for("the worker reports itself advancing", lambda: advancing() == 1.0)
    chaos.cluster.kill("redis", "STOP")
    try:
        chaos.publish(namespace, second)  # a batch now waits on Redis
        chaos.wait_for("the worker reports itself stalled", lambda: advancing() == 0.0, timeout=120)
    finally:
        chaos.cluster.kill("redis", "CONT")
    resumed = time.time()
    client = chaos.cluster.redis()

    def says_advancing() -> bool:
        beat = orjson.loads(client.get(RedisKeys(namespace).worker) or b"{}")
        return beat.get("at", 0) > resumed and beat.get("state") == "advancing" and beat.get("advancing") is True

    chaos.wait_for("the heartbeat says advancing again", says_advancing, timeout=120)
    chaos.wait_for("the metric says advancing again", lambda: advancing() == 1.0)
    chaos.close(namespace)
    chaos.converge(namespace, time.monotonic())
    chaos.stop_all()


@pytest.mark.parametrize(("state", "sig"), cases.STOPS,
                         ids=[f"{state}-{signal.Signals(sig).name}" for state, sig in cases.STOPS])
def test_a_worker_stops_within_seconds_in_every_state(chaos, state, sig):
    seconds = cases.stop_in_state(chaos, state, sig)
    print(f"\nstop {state} {signal.Signals(sig).name}: {seconds:.2f}s")


@pytest.mark.slow
def test_live_mode_fed_at_a_steady_rate_for_a_minute(chaos):
    report("live_steady", cases.live_steady(chaos))


def test_no_worker_is_left_behind(chaos):
    import subprocess

    chaos.stop_all()
    running = [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
               .splitlines() if "cli.app worker" in line and str(Path(chaos.workdir)) in line]
    assert not running
