"""Integration fixtures: one real Kafka broker and one real Redis server for the whole session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from support import stack
from support.simulate import Simulator


@pytest.fixture(scope="session")
def local_stack() -> Iterator[stack.StackInfo]:
    # A run stopped by SIGTERM (a CI time limit, `timeout`) still tears the stack down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name = f"pytest-{os.getpid()}"
    info = stack.up(name)
    previous = {key: os.environ.get(key) for key in ("CHISO766_BOOTSTRAP", "CHISO766_REDIS_URL")}
    os.environ["CHISO766_BOOTSTRAP"], os.environ["CHISO766_REDIS_URL"] = info.bootstrap, info.redis_url
    try:
        yield info
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.down(name)


@pytest.fixture(scope="session")
def history_file(tmp_path_factory, calendar) -> Path:
    """≥ 50k events: 4,500 dossiers over 200 days."""
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    lines = list(Simulator(2026, 4500, calendar=calendar, days=200).events())
    assert len(lines) >= 50_000
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="session")
def office_namespace(local_stack, tmp_path_factory, calendar) -> str:
    """A small province (600 dossiers, 200 days) replayed through a real worker into namespace `office`:
    what the notice, digest and dashboard tests read."""
    path = tmp_path_factory.mktemp("office") / "history.jsonl"
    path.write_bytes(b"\n".join(Simulator(1410, 600, calendar=calendar, days=200).events()) + b"\n")
    chiso766("replay", str(path), "--namespace", "office", "--wait")
    return "office"


def settings_for(info: stack.StackInfo, namespace: str | None = None, **overrides) -> Settings:
    return Settings(bootstrap=info.bootstrap, redis_url=info.redis_url,
                    namespace=namespace or f"t{uuid.uuid4().hex[:8]}", **overrides)


def chiso766(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "cli.app", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"chiso766 {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


class WorkerProcess:
    """A worker subprocess that the test can stop cleanly or kill outright."""

    def __init__(self, settings: Settings, log_dir: Path, mode: str = "replay", extra: tuple[str, ...] = ()):
        self.log = (log_dir / f"{settings.namespace}-worker.log").open("ab")
        command = [sys.executable, "-m", "cli.app", "worker", "--namespace", settings.namespace, "--mode", mode,
                   "--partitions", str(settings.partitions), *extra]
        env = {**os.environ, "CHISO766_DATA": str(log_dir / "data")}  # table stores of this test only
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        env=env)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()
        return self.process.returncode
