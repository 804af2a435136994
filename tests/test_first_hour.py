"""The first hour of a new user, without a stack: the current namespace, and one line (never a
traceback) from every command when Redis or Kafka does not answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.app", *args], capture_output=True, text=True, env=env,
                          input=stdin, cwd=ROOT, timeout=120)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items()
             if key not in ("CHISO766_NAMESPACE", "CHISO766_STACK", "CHISO766_REDIS_URL", "CHISO766_BOOTSTRAP")}
    return {**clean, "CHISO766_STACK_DIR": str(tmp_path / "stacks"), "COLUMNS": "80"}


def test_the_current_namespace_is_saved_with_the_stack_and_the_environment_wins(env):
    assert run("namespace", env=env).stdout.strip() == "chiso766"
    assert run("namespace", "demo", env=env).returncode == 0
    assert run("namespace", env=env).stdout.strip() == "demo"
    assert run("namespace", env={**env, "CHISO766_NAMESPACE": "other"}).stdout.strip() == "other"
    refused = run("namespace", "a b", env=env)
    assert refused.returncode == 2 and "a namespace is" in refused.stderr


def test_commands_read_the_current_namespace(env, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli.app import app
    from support import current

    monkeypatch.setenv("CHISO766_STACK_DIR", str(tmp_path / "stacks"))
    monkeypatch.delenv("CHISO766_NAMESPACE", raising=False)
    seen: list[str] = []
    monkeypatch.setattr("cli.streaming._settings", lambda namespace, *_, **__: seen.append(namespace) or exit(0))
    current.set_current_namespace("demo")
    CliRunner().invoke(app, ["scores", "--period", "year:2026"])
    CliRunner().invoke(app, ["scores", "--period", "year:2026", "--namespace", "given"])
    assert seen == ["demo", "given"]


@pytest.mark.parametrize("command", [
    ["scores", "--period", "year:2026"],
    ["leaderboard", "--period", "year:2026"],
    ["export", "--period", "month:2026-10", "--unit", "H15", "--out", "notice.xlsx"],
    ["alerts", "--consumer-group", "office"],
    ["project", "--rebuild"],
    ["worker", "--namespace", "nowhere"],
    ["replay", "-", "--namespace", "nowhere"],
])
def test_an_unreachable_redis_or_kafka_is_one_line(env, command, tmp_path):
    port = closed_port()
    env = {**env, "CHISO766_REDIS_URL": f"redis://127.0.0.1:{port}", "CHISO766_BOOTSTRAP": f"127.0.0.1:{port}"}
    done = run(*command, env=env, stdin='{"event_type": "x"}\n')
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Redis" in lines[0] or "Kafka" in lines[0]


def test_progress_knows_its_totals_for_simulate_and_for_a_gzip_history(tmp_path):
    from cli.history import file_position, history_size, open_history, write_lines
    from support import resources
    from support.simulate import Simulator

    heard: list[tuple[str, int, int]] = []
    path = str(tmp_path / "history.jsonl.gz")
    count = write_lines(path, Simulator(7, 600, calendar=resources.load_calendar()).events(
        lambda *stage: heard.append(stage)))
    assert heard[-1] == ("events", count, count)
    assert ("dossiers", 600, 600) in heard
    with open_history(path) as stream:
        position = file_position(stream)
        while stream.read(1 << 16):
            assert position() <= history_size(path)
        assert position() == history_size(path)  # the bar ends at 100 %, measured on the compressed file
