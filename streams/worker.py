"""Running a worker process: topics first, metrics endpoint, then the Faust worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path

from streams.config import DOSSIER_TOPIC, Settings
from streams.topics import ensure_topics

FETCH_MAX_WAIT_MS = 50


def _short_fetch_waits() -> None:
    """Faust builds its consumer with fetch_max_wait_ms=1500. aiokafka keeps one fetch in flight per
    broker, and a fetch that holds only partitions with nothing new (tallies, petitions) parks
    there for the full wait while the busy partitions queue behind it: 1.5 s stalls at a steady
    2,000 events/s. A short wait costs a few empty fetches a second instead."""
    import aiokafka

    if getattr(aiokafka.AIOKafkaConsumer, "_chiso766_short_waits", False):
        return
    original = aiokafka.AIOKafkaConsumer

    class ShortWaitConsumer(original):  # type: ignore[misc, valid-type]
        _chiso766_short_waits = True

        def __init__(self, *topics, **kwargs):
            kwargs["fetch_max_wait_ms"] = min(kwargs.get("fetch_max_wait_ms", 500), FETCH_MAX_WAIT_MS)
            super().__init__(*topics, **kwargs)

    aiokafka.AIOKafkaConsumer = ShortWaitConsumer


def run_worker(settings: Settings, loglevel: str = os.environ.get("CHISO766_LOGLEVEL", "warn")) -> None:
    actual = asyncio.run(ensure_topics(settings))
    have = actual.get(settings.topic(DOSSIER_TOPIC))
    if have is not None and have != settings.partitions:
        raise SystemExit(f"{settings.topic(DOSSIER_TOPIC)} has {have} partitions, not {settings.partitions}: "
                         "start the worker with --partitions {have}")
    Path(settings.data_dir, settings.namespace).parent.mkdir(parents=True, exist_ok=True)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=os.environ.get("CHISO766_METRICS_HOST", "127.0.0.1"))
    import faust

    _short_fetch_waits()
    # Millions of long-lived state objects make a full collection take a second or more, which
    # stalls the stream; they hold no reference cycles, so collect far less often.
    gc.set_threshold(200_000, 100, 1000)

    from streams.app import build_app

    logging.getLogger("faust").setLevel(logging.WARNING)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
