"""Running a worker process: topics first, metrics endpoint, then the Faust worker."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from streams import faust_fixes  # noqa: F401 - its version guard runs before faust is imported
from streams.config import DOSSIER_TOPIC, Settings
from streams.topics import ensure_topics, settings_replication


def run_worker(settings: Settings, loglevel: str = os.environ.get("CHISO766_LOGLEVEL", "warn")) -> None:
    actual = asyncio.run(ensure_topics(settings))
    # Faust creates the tables' changelog topics itself, with this many copies.
    settings = dataclasses.replace(settings, replication=asyncio.run(settings_replication(settings)))
    have = actual.get(settings.topic(DOSSIER_TOPIC))
    if have is not None and have != settings.partitions:
        raise SystemExit(f"{settings.topic(DOSSIER_TOPIC)} has {have} partitions, not {settings.partitions}: "
                         "start the worker with --partitions {have}")
    Path(settings.data_dir, settings.namespace).parent.mkdir(parents=True, exist_ok=True)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=os.environ.get("CHISO766_METRICS_HOST", "127.0.0.1"))
    import faust

    # Millions of long-lived state objects make a full collection take a second or more, which
    # stalls the stream; they hold no reference cycles, so collect far less often.
    gc.set_threshold(200_000, 100, 1000)

    from streams.app import build_app

    logging.getLogger("faust").setLevel(logging.WARNING)
    app = build_app(settings)
    worker = stoppable_worker(faust.Worker)(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


log = logging.getLogger("chiso766.worker")


def stop_grace() -> float:
    """Seconds a worker has, after SIGTERM or SIGINT, to stop cleanly before it exits anyway."""
    return float(os.environ.get("CHISO766_STOP_GRACE", "5"))


class StopWatchdog:
    """Ends the process once a stop signal has gone unanswered for `grace` seconds, or at a second one.

    Faust stops on SIGTERM / SIGINT by stopping its services in turn: flushing the producer,
    committing, leaving the group. Each of those can wait for good on a broker or a Redis that does
    not answer (a producer batch with no leader waits out its 20-minute request timeout), and a
    worker blocked in its own code never even runs the loop's signal handler. The watchdog is a
    thread armed by a Python-level handler, so it runs whatever the event loop is doing. Exiting
    without the clean stop is the SIGKILL case the pipeline is built for: nothing is acknowledged
    before its table writes are in the changelog, and a restarted worker re-sends its tallies
    whole (`tests/integration/test_pipeline.py`, `test_faults.py`).
    """

    def __init__(self, grace: float, exit_now=os._exit):
        self.grace, self._exit_now = grace, exit_now
        self._armed: threading.Timer | None = None

    def install(self) -> None:
        """Chain a handler in front of SIGTERM and SIGINT. asyncio's own handling keeps working: it
        is woken through the signal wakeup file descriptor, whatever the Python-level handler is."""
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, self.on_signal)

    def on_signal(self, number: int, frame: FrameType | None = None) -> None:
        name = signal.Signals(number).name
        if self._armed is not None:
            self.expire(number, f"a second {name}")
            return
        self._armed = threading.Timer(self.grace, self.expire, (number, f"{name} {self.grace:g}s ago"))
        self._armed.daemon = True
        self._armed.start()

    def expire(self, number: int, why: str) -> None:
        if self._armed is not None:
            self._armed.cancel()  # when a second signal came first
        sys.stderr.write(f"chiso766 worker: not stopped cleanly after {why}; exiting now\n")
        sys.stderr.flush()
        self._exit_now(128 + number)


def stoppable_worker(base: type) -> type:
    """Faust's worker class with a `StopWatchdog` behind its own signal handlers."""

    class StoppableWorker(base):
        def install_signal_handlers(self) -> None:
            super().install_signal_handlers()  # the loop's handlers: Faust's clean stop
            StopWatchdog(stop_grace()).install()

    return StoppableWorker
