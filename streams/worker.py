"""Running a worker process: topics first, metrics endpoint, then the Faust worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from pathlib import Path

from streams import faust_fixes  # noqa: F401 - its version guard runs before faust is imported
from streams.config import DOSSIER_TOPIC, Settings
from streams.topics import ensure_topics


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

    # Millions of long-lived state objects make a full collection take a second or more, which
    # stalls the stream; they hold no reference cycles, so collect far less often.
    gc.set_threshold(200_000, 100, 1000)

    from streams.app import build_app

    logging.getLogger("faust").setLevel(logging.WARNING)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
