"""A stack interrupted while it starts (Ctrl-C, SIGTERM as SystemExit) leaves no process and no
directory: until its info is saved nothing else can name what it started. Found trying
bench.pipeline_ab cold: a Ctrl-C in its first half second left a redis-server behind."""

from __future__ import annotations

import subprocess
import time

import pytest

from support import stack


def wait_gone(pid: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not stack._alive(pid):  # noqa: SLF001 - this project's own helper (zombies count as gone)
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def stack_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHISO766_STACK_DIR", str(tmp_path))
    monkeypatch.setattr(stack, "_format_kafka", lambda *args, **kwargs: None)  # no jars needed
    started: list[int] = []
    real_start_redis = stack._start_redis  # noqa: SLF001 - wrapped to learn the pid, this project's own step

    def start_redis(*args, **kwargs):
        started.append(real_start_redis(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(stack, "_start_redis", start_redis)
    return tmp_path, started


def test_an_interrupt_before_kafka_runs_stops_redis_and_removes_the_directory(stack_home, monkeypatch):
    home, started = stack_home

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stack, "_launch_kafka", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stack.up("interrupted")
    assert len(started) == 1 and wait_gone(started[0])
    assert not (home / "interrupted").exists()


def test_an_interrupt_between_two_brokers_stops_the_first_one_too(stack_home, monkeypatch):
    home, started = stack_home
    launched: list[int] = []

    def launch(directory, heap="768m"):
        if launched:
            raise SystemExit(143)  # SIGTERM, as the commands that start stacks turn it
        launched.append(subprocess.Popen(["sleep", "120"], start_new_session=True).pid)
        return launched[-1]

    monkeypatch.setattr(stack, "_launch_kafka", launch)
    with pytest.raises(SystemExit):
        stack.up("three", brokers=3)
    assert wait_gone(started[0]) and wait_gone(launched[0])
    assert not (home / "three").exists()
