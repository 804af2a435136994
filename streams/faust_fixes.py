"""Fixes to faust-streaming 0.15.3 / aiokafka that the worker applies before it builds the app.

Each one closes a hole found here against a real broker; each says what it closes. They patch
library classes in place, so they run once per process, from `streams.worker.run_worker`.
`QuietMonitor` is the one addition: it is handed to the app, not patched in.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any

from faust.sensors.monitor import Monitor

FETCH_MAX_WAIT_MS = 50
_APPLIED: set[str] = set()
log = logging.getLogger("chiso766.worker")


def apply_all() -> None:
    _short_fetch_waits()
    _seek_uncommitted_partitions_to_the_start()
    _deliver_without_tasks_when_nothing_blocks()


def _once(name: str) -> bool:
    if name in _APPLIED:
        return False
    _APPLIED.add(name)
    return True


def _short_fetch_waits() -> None:
    """Faust builds its consumer with fetch_max_wait_ms=1500. aiokafka keeps one fetch in flight per
    broker, and a fetch that holds only partitions with nothing new (tallies, petitions) parks
    there for the full wait while the busy partitions queue behind it: 1.5 s stalls at a steady
    2,000 events/s. A short wait costs a few empty fetches a second instead."""
    if not _once("short_fetch_waits"):
        return
    import aiokafka

    original = aiokafka.AIOKafkaConsumer

    class ShortWaitConsumer(original):  # type: ignore[misc, valid-type]
        def __init__(self, *topics, **kwargs):
            kwargs["fetch_max_wait_ms"] = min(kwargs.get("fetch_max_wait_ms", 500), FETCH_MAX_WAIT_MS)
            super().__init__(*topics, **kwargs)

    aiokafka.AIOKafkaConsumer = ShortWaitConsumer


def _seek_uncommitted_partitions_to_the_start() -> None:
    """Messages lost on a worker's first start or after a crash before its first commit.

    While a worker joins the group and restores its tables, Faust's fetcher already pulls source
    messages and drops them (the partitions are not "active" yet); when recovery ends it calls
    `perform_seek` to go back to the committed offsets. But aiokafka's `seek_to_committed` skips a
    partition with no committed offset (None or 0), so its position stays past the dropped
    messages, and Faust's gap filling later commits over them. Seen here as a restarted replay that
    never saw its closing watermark, and it loses events silently. A partition of an acked (source)
    topic without a committed offset now goes back to its first offset — what
    `auto_offset_reset=earliest` promises; re-reading is harmless, events are idempotent.
    """
    if not _once("seek_uncommitted"):
        return
    from faust.transport.consumer import Consumer

    original = Consumer.perform_seek

    async def perform_seek(self) -> None:
        await original(self)
        acks_enabled_for = self.app.topics.acks_enabled_for
        uncommitted = [tp for tp in self.assignment()
                       if acks_enabled_for(tp.topic) and not self._committed_offset.get(tp)]
        if not uncommitted:
            return
        earliest = await self.earliest_offsets(*uncommitted)
        for tp in uncommitted:
            start = earliest.get(tp)
            if start is not None:
                await self.seek(tp, start)
        log.debug("no committed offset: %d partitions read from their start", len(uncommitted))

    Consumer.perform_seek = perform_seek


def _deliver_without_tasks_when_nothing_blocks() -> None:
    """Faust's consumer hands every message to its streams with `wait_first(deliver(message),
    suspend_flow.wait())`, which creates four tasks and an `asyncio.wait` per message so that a
    rebalance can interrupt a delivery blocked on a full stream buffer. Almost every delivery
    finishes without blocking, and those tasks were a quarter of a worker's time on one-event
    messages. The delivery now runs in place first; only if it has to wait does the rest of it
    (continued exactly where it stopped) go to `wait_first` with the other waits, as before."""
    if not _once("eager_delivery"):
        return
    from faust.transport.consumer import Consumer
    from mode.services import WaitResults

    original = Consumer.wait_first

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first, others = coros[0], coros[1:]
        if (isinstance(first, Coroutine) and not self.suspend_flow.is_set() and not self._stopped.is_set()
                and not self._crashed.is_set()):
            try:
                waiting_on = first.send(None)
            except StopIteration as finished:
                for other in others:  # `suspend_flow.wait()`, never started: close it quietly
                    if isinstance(other, Coroutine):
                        other.close()
                return WaitResults([first], [finished.value], False)

            async def rest() -> Any:
                return await _continue(first, waiting_on)

            coros = (rest(), *others)
        return await original(self, *coros, timeout=timeout)

    Consumer.wait_first = wait_first


@types.coroutine
def _continue(coroutine: Coroutine, waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on with a coroutine that was stepped by hand up to the point where it yielded
    `waiting_on`: PEP 380's `yield from`, entered after its first step."""
    to_yield = waiting_on
    while True:
        try:
            sent = yield to_yield
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as thrown:  # forwarded into the coroutine, as `yield from` does
            try:
                to_yield = coroutine.throw(thrown)
            except StopIteration as finished:
                return finished.value
        else:
            try:
                to_yield = coroutine.send(sent)
            except StopIteration as finished:
                return finished.value


class QuietMonitor(Monitor):
    """Faust's built-in monitor without its per-message bookkeeping.

    The default monitor times every message in and out, every stream event and every send, and keeps
    the figures for Faust's web views, which workers here do not serve (their metrics are the
    Prometheus ones in `streams.metrics`). Per message that is several clock reads and dictionary
    updates on the hot path. The per-partition end offsets the consumer reports are still kept.
    """

    def _ignore(self, *args: Any, **kwargs: Any) -> None:
        return None

    on_message_in = on_stream_event_in = on_stream_event_out = on_message_out = _ignore
    on_table_get = on_table_set = on_table_del = on_send_initiated = on_send_completed = _ignore
