"""The baseline of the pipeline benchmark: a naive Faust agent that writes a table per event.

Run by bench.pipeline as a subprocess: `python -m bench.naive_faust TOPIC COUNT` with
CHISO766_BOOTSTRAP set. Prints `READY` once it consumed the warm-up message, then
`DONE <unix time>` when COUNT events have been folded.
"""

from __future__ import annotations

import os
import sys
import time

import faust
import orjson


def main() -> None:
    topic_name, expected = sys.argv[1], int(sys.argv[2])
    app = faust.App(f"naive-{topic_name}", broker=f"kafka://{os.environ['CHISO766_BOOTSTRAP']}",
                    store="memory://", web_enabled=False, consumer_auto_offset_reset="earliest",
                    broker_session_timeout=10, broker_heartbeat_interval=1, key_serializer="raw",
                    value_serializer="raw", datadir=f"/tmp/naive-{topic_name}", topic_partitions=4)
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, partitions=4)
    table = app.Table("latest-status", key_type=bytes, value_type=bytes, partitions=4)
    seen = {"count": 0}

    @app.agent(topic)
    async def fold(stream: faust.StreamT) -> None:
        async for event in stream.events():
            if event.key == b"warmup":
                print("READY", flush=True)
                continue
            body = orjson.loads(event.value)
            table[event.key] = body["event_type"].encode()  # one table write per event
            seen["count"] += 1
            if seen["count"] == expected:
                print(f"DONE {time.time()}", flush=True)

    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
