"""The Redis projection: deadline alerts at the right event times, once; lists; rebuild after a wipe."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis

from schemas import events as ev
from streams import replay
from tests.builders import received, status, ts
from tests.integration.conftest import WorkerProcess, chiso766, settings_for
from tests.integration.test_pipeline import assert_same

pytestmark = pytest.mark.integration


def wait_for_worker(client: redis.Redis, namespace: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not client.exists(f"{namespace}:worker"):
        assert time.monotonic() < deadline, "the worker did not announce itself"
        time.sleep(0.2)


def test_a_scripted_dossier_raises_each_alert_once_at_its_event_time(local_stack, tmp_path):
    settings = settings_for(local_stack, "alerts")
    client = redis.Redis.from_url(local_stack.redis_url)
    worker = WorkerProcess(settings, tmp_path)
    dossier = received("ALERT-1", "2026-09-07 09:00", "2026-09-10 17:00", unit="H15.01", officer="CB-7")
    line = ev.encode(dossier)

    async def advance(moment: str) -> None:
        await replay.wait_for(settings, await replay.send_watermarks(settings, ts(moment)), 120,
                              worker=worker.process)

    async def run() -> None:
        await replay.publish(settings, [line], watermark=False)
        for moment in ("2026-09-09 07:29", "2026-09-09 07:30", "2026-09-10 07:30", "2026-09-10 11:00"):
            await advance(moment)
        assert client.zscore("alerts:approaching:unit:H15.01", "ALERT-1") == ts("2026-09-10 17:00")
        await advance("2026-09-10 17:00:01")
        await replay.publish(settings, [line, line], watermark=False)  # redelivered
        await advance("2026-09-11 09:00")
        assert client.zscore("alerts:overdue:unit:H15.01", "ALERT-1") == ts("2026-09-10 17:00")
        assert client.zscore("alerts:overdue:officer:CB-7", "ALERT-1") is not None
        await replay.publish(settings, [ev.encode(status("ALERT-1", "2026-10-01 10:00", 9))], watermark=False)
        await advance("2026-10-01 11:00")

    try:
        asyncio.run(run())
    finally:
        worker.stop()
    entries = [orjson.loads(fields[b"alert"]) for _, fields in client.xrange("alerts:alerts")]
    assert [(a["kind"], a["at"]) for a in entries] == [
        ("approaching", "2026-09-09T07:30:00+07:00"), ("apology_due", "2026-09-10T07:30:00+07:00"),
        ("approaching", "2026-09-10T11:00:00+07:00"), ("overdue", "2026-09-10T17:00:01+07:00")]
    first = entries[0]
    assert first["dossier"] == "ALERT-1" and first["unit"] == "H15.01" and first["officer"] == "CB-7"
    assert first["due"] == "2026-09-10T17:00:00+07:00" and "points_at_stake" in first
    assert len({a["alert_id"] for a in entries}) == 4
    # Completed late: out of the overdue lists, into October's list of dossiers completed late.
    assert client.zscore("alerts:overdue:unit:H15.01", "ALERT-1") is None
    assert client.zscore("alerts:overdue:officer:CB-7", "ALERT-1") is None
    assert client.zscore("alerts:approaching:unit:H15.01", "ALERT-1") is None
    assert client.zscore("alerts:late:2026-10:unit:H15.01", "ALERT-1") == ts("2026-10-01 10:00")
    assert client.zscore("alerts:late:2026-10:officer:CB-7", "ALERT-1") == ts("2026-10-01 10:00")
    assert client.hget("alerts:dossier:ALERT-1", "list") == b"late"


def test_project_rebuild_restores_a_wiped_redis(local_stack, history_file, tmp_path):
    settings = settings_for(local_stack, "rebuild")
    client = redis.Redis.from_url(local_stack.redis_url)
    worker = WorkerProcess(settings, tmp_path, extra=("--tick", "1"))
    try:
        async def run() -> None:
            published = await replay.publish(settings, history_file.read_bytes().splitlines())
            await replay.wait_for(settings, published, 600, worker=worker.process)

        asyncio.run(run())
        overdue_before = {key: client.zrange(key, 0, -1) for key in client.scan_iter("rebuild:overdue:unit:*")}
        assert overdue_before, "the history leaves overdue dossiers"
        for key in client.scan_iter("rebuild:*"):
            client.delete(key)
        wait_for_worker(client, "rebuild")
        chiso766("project", "--rebuild", "--namespace", "rebuild")
        assert_same(history_file, "rebuild")
        overdue_after = {key: client.zrange(key, 0, -1) for key in client.scan_iter("rebuild:overdue:unit:*")}
        assert overdue_after == overdue_before
    finally:
        worker.stop()
