"""The streaming pipeline on a real Kafka broker and a real Redis server: stream = batch."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer

from scoring.periods import periods_of
from streams import replay
from tests.integration.conftest import WorkerProcess, chiso766, settings_for

pytestmark = pytest.mark.integration
PERIODS = ("year:2026", "quarter:2026-Q2", "month:2026-05")


def batch_report(history, period: str) -> dict:
    return orjson.loads(chiso766("score", str(history), "--period", period, "--json").stdout)


def stream_report(namespace: str, period: str) -> dict:
    return orjson.loads(chiso766("scores", "--period", period, "--namespace", namespace).stdout)


def assert_same(history, namespace: str) -> None:
    for period in PERIODS:
        expected, actual = batch_report(history, period), stream_report(namespace, period)
        assert actual["as_of"] == expected["as_of"]
        assert [u["code"] for u in actual["units"]] == [u["code"] for u in expected["units"]]
        for got, want in zip(actual["units"], expected["units"], strict=True):
            assert got == want, f"{period} {got['code']} differs"


def publish(settings, lines, timeout: float = 300, worker=None) -> None:
    async def run() -> None:
        published = await replay.publish(settings, lines)
        await replay.wait_for(settings, published, timeout, worker=worker)

    asyncio.run(run())


def test_stream_equals_batch(local_stack, history_file):
    chiso766("replay", str(history_file), "--namespace", "equal", "--wait", "--timeout", "600")
    assert_same(history_file, "equal")


def test_duplicates_and_shuffles_within_a_dossier_change_nothing(local_stack, history_file, tmp_path):
    lines = history_file.read_bytes().splitlines()
    rng = random.Random(7)
    noisy = lines + rng.sample(lines, len(lines) // 5)
    slots: dict[str, list[int]] = {}
    for index, line in enumerate(noisy):
        code = orjson.loads(line).get("dossier_code")
        if code:
            slots.setdefault(code, []).append(index)
    for positions in slots.values():
        moved = [noisy[i] for i in positions]
        rng.shuffle(moved)
        for slot, line in zip(positions, moved, strict=True):
            noisy[slot] = line
    path = tmp_path / "noisy.jsonl"
    path.write_bytes(b"\n".join(noisy) + b"\n")
    chiso766("replay", str(path), "--namespace", "noisy", "--wait", "--timeout", "600")
    assert_same(history_file, "noisy")


def test_malformed_messages_go_to_dead_letter_and_nothing_valid_is_lost(local_stack, history_file, tmp_path):
    lines = history_file.read_bytes().splitlines()
    rng = random.Random(11)
    bad_kinds = [b"{not json", b'{"event_type": "dossier.teleported", "event_id": "x"}', b"\xff\xfe\xfd",
                 b'{"event_type": "dossier.status_changed", "event_id": "s", "dossier_code": "D",'
                 b' "occurred_at": "2026-02-30T09:00:00+07:00", "status": 9}', b"[1]"]
    # Schema-valid but refused: a typo dated 2099 for a real dossier (it must not move any clock) and
    # a code holding the officer-owner separator.
    real = next(orjson.loads(line)["dossier_code"] for line in lines if b'"dossier.received"' in line)
    bad_kinds += [orjson.dumps({"event_type": "dossier.status_changed", "event_id": "typo", "dossier_code": real,
                                "occurred_at": "2099-01-01T09:00:00+07:00", "status": 9}),
                  orjson.dumps({"event_type": "dossier.status_changed", "event_id": "sep", "dossier_code": real,
                                "occurred_at": "2026-03-02T09:00:00+07:00", "status": 4, "officer_id": "A|B"})]
    mixed = list(lines)
    for number in range(1000):
        mixed.insert(rng.randrange(len(mixed)), bad_kinds[number % len(bad_kinds)])
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    started = time.time()
    chiso766("replay", str(path), "--namespace", "mixed", "--wait", "--timeout", "600")
    processed = {period.key for moment in (started, time.time()) for period in periods_of(int(moment))}
    assert_same(history_file, "mixed")
    letters = asyncio.run(read_topic(local_stack.bootstrap, "mixed.dead-letter", 1000))
    assert len(letters) == 1000
    reasons = {letter["reason"] for letter in letters}
    assert {"not_json", "unknown_event_type", "not_utf8", "impossible_timestamp", "wrong_type", "future_time",
            "unusable_code"} <= reasons
    fields = {"topic", "partition", "offset", "detail", "raw_bytes", "raw_sha256"}
    assert all(fields <= set(letter) for letter in letters)
    # The bytes of a message only when it is JSON (its personal fields removed); of the rest only the hash.
    assert {letter["reason"] for letter in letters if "raw" not in letter} == {"not_json", "not_utf8"}
    # The same counts in Redis, all time and by the month / quarter / year they were processed in
    # (a run that crossed midnight at a month's end splits them between two months: summed per kind).
    client = redis.Redis.from_url(local_stack.redis_url)
    by_reason = Counter(letter["reason"] for letter in letters)

    def counts(key: str) -> Counter:
        return Counter({reason.decode(): int(count) for reason, count in client.hgetall(key).items()})

    assert counts("mixed:rejected") == by_reason
    keys = {key.decode().removeprefix("mixed:rejected:") for key in client.scan_iter("mixed:rejected:*")}
    assert keys and keys <= processed
    for kind in ("month", "quarter", "year"):
        assert sum((counts(f"mixed:rejected:{key}") for key in keys if key.startswith(kind)), Counter()) == by_reason


async def wait_until_consuming(settings, timeout: float = 120) -> None:
    """Until the worker has projected some, but not all, of the history."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while not await client.exists(f"{settings.redis_prefix}:sources"):
            assert time.monotonic() < deadline, "the worker never started consuming"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def read_topic(bootstrap: str, topic: str, at_least: int, timeout: float = 30) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < at_least and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found += [orjson.loads(record.value) for record in records]
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            found += [orjson.loads(record.value) for record in records]
    finally:
        await consumer.stop()
    return found


async def wait_until_committed(settings, timeout: float = 120) -> None:
    """Until the worker's group has committed an offset past the start of some dossier partition."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            offsets = await admin.list_consumer_group_offsets(settings.app_id)
            if any(tp.topic.endswith("dossier-events") and meta.offset > 0 for tp, meta in offsets.items()):
                return
            assert time.monotonic() < deadline, "the worker never committed an offset"
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


# "before-commit": killed before its first offset commit — the case where Faust used to drop the
# messages it fetched while its tables recovered (see streams/faust_fixes.py); "after-commit": killed
# with offsets committed and table writes in flight.
@pytest.mark.parametrize(("stop_signal", "store", "when"), [
    (signal.SIGTERM, "memory://", "before-commit"),
    (signal.SIGKILL, "memory://", "before-commit"),
    (signal.SIGKILL, "memory://", "after-commit"),
    (signal.SIGKILL, "rocksdb://", "after-commit"),
], ids=["clean-stop", "sigkill-before-commit", "sigkill-after-commit", "sigkill-after-commit-rocksdb"])
def test_a_worker_stopped_mid_stream_resumes_to_the_batch_result(local_stack, history_file, tmp_path, stop_signal,
                                                                 store, when):
    settings = settings_for(local_stack, f"restart-{stop_signal.name.lower()}-{store[:4]}-{when}")
    extra = ("--store", store)
    lines = history_file.read_bytes().splitlines()
    half = len(lines) // 2

    async def run() -> None:
        first = await replay.publish(settings, lines[:half], watermark=False)
        worker = WorkerProcess(settings, tmp_path, extra=extra)
        try:
            await (wait_until_committed if when == "after-commit" else wait_until_consuming)(settings)
            worker.stop(stop_signal)  # mid-stream: the second half is not even published yet
        finally:
            worker.stop()
        second = await replay.publish(settings, lines[half:], watermark=False)
        restarted = WorkerProcess(settings, tmp_path, extra=extra)
        try:
            closing = await replay.send_watermarks(settings, max(first.latest, second.latest))
            await replay.wait_for(settings, closing, 120, worker=restarted.process)
        finally:
            restarted.stop()

    asyncio.run(run())
    assert_same(history_file, settings.namespace)


def test_replay_from_a_timestamp_copies_a_live_namespace_into_a_fresh_one(local_stack, history_file, tmp_path):
    from datetime import datetime

    from scoring.calendar import VIETNAM

    source = settings_for(local_stack, "live-source")
    lines = history_file.read_bytes().splitlines()
    half = len(lines) // 2

    async def feed() -> str:
        await replay.publish(source, lines[:half], watermark=False)
        await asyncio.sleep(1.5)
        since = datetime.now(VIETNAM).isoformat()
        await asyncio.sleep(1.5)
        await replay.publish(source, lines[half:], watermark=False)
        return since

    since = asyncio.run(feed())
    chiso766("replay", "--from-timestamp", since, "--source-namespace", "live-source", "--namespace", "from-ts",
             "--wait", "--timeout", "600")
    catalogue = [line for line in lines if b'"event_type":"unit.upserted"' in line
                 or b'"event_type":"procedure.upserted"' in line]
    expected = tmp_path / "expected.jsonl"
    expected.write_bytes(b"\n".join(catalogue + [line for line in lines[half:] if line not in catalogue]) + b"\n")
    assert_same(expected, "from-ts")
