"""The read side under attack (issue 13), at a size CI fits: bench.api's run on loopback with a real
redis-server of its own (it is killed mid-run) and the real API process — live streams past the
per-address and total limits, slow connections, one Redis subscription for every stream, Redis
killed and started again. What it asserts is behaviour; the numbers (requests/s, p99 with and
without the flood, against the bound) are printed, and `python -m bench.api` measures the full size."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from bench.api import Size, run

pytestmark = pytest.mark.integration
SIZE = Size(streams=200, slow=60, addresses=5, seconds=3.0, concurrency=4, header_timeout=2.0, dossiers=150)


def test_floods_and_a_redis_outage_leave_the_api_answering(tmp_path):
    result = asyncio.run(run(SIZE, tmp_path))
    print(orjson.dumps({key: result[key] for key in ("baseline", "flood", "bound_ms", "within_bound",
                                                     "recovered_s", "slow_held_max_s")}).decode())

    # Every stream the limits allow opens; one more from a full address is 429, past the total 503.
    assert result["streams_open"] == SIZE.streams and not result["stream_open_failures"]
    assert result["per_address_refusal"] == (429, "too_many_streams")
    assert result["total_refusal"] == (503, "live_full")
    # One subscription serves them all, and every stream got the events published meanwhile.
    assert result["redis_subscriptions"] == 1
    assert result["streams_with_scores"] == SIZE.streams == result["streams_open_at_end"]
    # The second client is answered throughout; each slow connection was closed by the server.
    assert set(result["baseline"]["statuses"]) == set(result["flood"]["statuses"]) == {"200"}
    assert result["slow_closed"] >= SIZE.slow and set(result["slow_statuses"]) == {"408"}

    # Redis killed: JSON 503 projection_unavailable from everything that reads it, health names it.
    down = result["redis_down"]
    assert down["not_json"] == 0 and set(down["statuses"]) <= {"200", "503"} and down["statuses"]["503"]
    assert set(down["errors"]) == {"projection_unavailable"}
    assert {path for path, statuses in down["by_path"].items() if "200" in statuses} <= {"/api/ruleset"}
    assert down["health_status"] == 503 and down["health_dependencies"] == {"redis": "unavailable"}
    # Started again: 200s, and every open stream heard both that Redis went and that it is back.
    assert set(result["after_recovery_statuses"]) == {"200"}
    assert result["streams_told_unavailable"] == result["streams_told_available"] == SIZE.streams
