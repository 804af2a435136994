"""Live mode: "as of" follows the wall clock, so time alone turns a dossier overdue; metrics."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from datetime import datetime, timedelta

import orjson
import pytest
import redis

from schemas import events as ev
from scoring.calendar import VIETNAM
from streams import replay
from tests.integration.conftest import WorkerProcess, settings_for

pytestmark = pytest.mark.integration


def test_time_alone_turns_a_live_dossier_overdue_and_metrics_are_served(local_stack, tmp_path):
    from support.stack import free_port

    settings = settings_for(local_stack, "live")
    client = redis.Redis.from_url(local_stack.redis_url)
    port = free_port()
    worker = WorkerProcess(settings, tmp_path, mode="live", extra=("--tick", "1", "--metrics-port", str(port)))
    now = datetime.now(VIETNAM).replace(microsecond=0)
    due = now + timedelta(seconds=8)
    dossier = ev.DossierReceived(
        event_id="live-1", occurred_at=now - timedelta(hours=2), source="test", dossier_code="LIVE-1",
        unit_code="H15.02", procedure_code="P9", channel=2, received_at=now - timedelta(hours=2), due_at=due,
        officer_id="CB-1")
    try:
        asyncio.run(replay.publish(settings, [ev.encode(dossier), b"{broken"], watermark=False))
        deadline = time.monotonic() + 90
        while client.zscore("live:overdue:unit:H15.02", "LIVE-1") is None:
            assert time.monotonic() < deadline, "the dossier never turned overdue"
            time.sleep(0.5)
        assert datetime.now(VIETNAM) > due, "overdue only once its due has passed"
        kinds = [orjson.loads(fields[b"alert"])["kind"] for _, fields in client.xrange("live:alerts")]
        assert "overdue" in kinds
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        for name in ("chiso766_events_in_total", "chiso766_events_rejected_total", "chiso766_batch_size_messages",
                     "chiso766_consumer_lag_messages", "chiso766_table_writes_total", "chiso766_projection_seconds",
                     "chiso766_alerts_emitted_total"):
            assert name in metrics
        assert 'chiso766_events_rejected_total{reason="not_json"} 1.0' in metrics
        assert "CB-1" not in metrics, "no officer id as a label"
    finally:
        worker.stop()
