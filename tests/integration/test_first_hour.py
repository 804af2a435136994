"""What a new user meets first: the README's demo (twice in a row, then `demo.sh stop` leaving no
process), and the alert subscriber's messages on a namespace with no stream and for a new group."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from tests.integration.conftest import chiso766

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_alerts_on_a_namespace_without_a_stream_say_so_and_a_new_group_says_where_it_starts(local_stack):
    client = redis.Redis.from_url(local_stack.redis_url)
    alert = {"alert_id": "a1", "kind": "overdue", "dossier": "D-1", "procedure": "P1", "unit": "U1", "officer": "O1",
             "due": "2026-10-02T17:00:00+07:00", "at": "2026-10-02T17:00:00+07:00", "threshold_working_minutes": 0,
             "points_at_stake": 1.26}
    client.xadd("firsthour:alerts", {"alert": orjson.dumps(alert), "kind": "overdue", "unit": "U1"})
    missing = chiso766("alerts", "--consumer-group", "office", "--namespace", "nosuchns", check=False)
    assert missing.returncode == 2
    assert "namespace nosuchns has no alert stream" in missing.stderr and "firsthour" in missing.stderr
    assert not client.exists("nosuchns:alerts")  # asking did not create it
    fresh = chiso766("alerts", "--consumer-group", "office", "--namespace", "firsthour")
    assert "starts at new alerts (1 older alerts kept; --from-start reads them)" in fresh.stderr
    assert fresh.stdout == ""
    replaying = chiso766("alerts", "--consumer-group", "archive", "--from-start", "--namespace", "firsthour")
    assert "starts at the oldest of the 1 alerts kept" in replaying.stderr and "D-1" in replaying.stdout
    again = chiso766("alerts", "--consumer-group", "office", "--namespace", "firsthour")
    assert "new subscriber group" not in again.stderr


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_the_demo_runs_twice_in_a_row_ends_with_the_url_and_stop_leaves_no_process(tmp_path):
    env = {**{key: value for key, value in os.environ.items()
              if key not in ("CHISO766_BOOTSTRAP", "CHISO766_REDIS_URL", "CHISO766_NAMESPACE", "CHISO766_STACK")},
           "CHISO766_STACK_DIR": str(tmp_path / "stacks"), "CHISO766_DEMO_DIR": str(tmp_path / "demo"),
           "CHISO766_VENV": sys.prefix, "DOSSIERS": "800", "DURATION": "2", "CHISO766_DATA": str(tmp_path / "data")}
    started: list[int] = []

    def demo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/demo.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)

    try:
        for _ in range(2):
            done = demo()
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            last = done.stdout.strip().splitlines()[-1]
            url = re.fullmatch(r"Dashboard \(live\): (http://127\.0\.0\.1:\d+/)", last)
            assert url, done.stdout[-2000:]
            assert "waiting for the first scores" in done.stderr or "Tính đến" in done.stdout
            assert "chiso766 leaderboard --period year:" in done.stdout  # the next commands to try
            assert httpx.get(url.group(1), timeout=10).status_code == 200
            started += [int(pid) for pid in (tmp_path / "demo" / "demo.pids").read_text().split()]
        stack = json.loads((tmp_path / "stacks" / "default" / "stack.json").read_text())
        started += [stack["redis_pid"], *(broker["pid"] for broker in stack["brokers"])]
        # The demo made its namespace the current one: a command with no --namespace finds its scores.
        scores = subprocess.run([sys.executable, "-m", "cli.app", "scores", "--period", f"month:{_this_month()}"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert scores.returncode == 0 and orjson.loads(scores.stdout)["units"], scores.stderr
    finally:
        stopped = demo("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "did not stop" not in stopped.stderr  # every worker answered SIGTERM
    assert [pid for pid in started if alive(pid)] == []


def _this_month() -> str:
    from datetime import date

    return date.today().strftime("%Y-%m")
