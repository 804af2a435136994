"""The one adapter for faust-streaming 0.15.3 / aiokafka 0.14.0 internals, and the fixes it carries.

The fixes live in a Faust transport of our own, `Transport` (Faust's aiokafka transport with its
consumer subclassed), registered in Faust's transport registry under the URL scheme `chiso766://`
(`TRANSPORT`): the worker's app names that scheme as its broker, so the fixes apply to that app and
nothing else in the process — no library class is patched. Each fix closes a hole found here against
a real broker; each says what it closes. `QuietMonitor` is handed to the app as its monitor.

Every other use of their private internals is a function here too (`aiokafka_producer`, `acting_for`,
`refresh_metadata`). So this module refuses to be imported on versions other than the ones they were
checked against
(`TESTED_VERSIONS`, the versions of requirements.lock) unless CHISO766_ALLOW_UNTESTED_VERSIONS=1.
"""

from __future__ import annotations

import logging
import types
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from support.versions import ALLOW_UNTESTED, allowed_anyway, describe, installed_version, untested_versions

log = logging.getLogger("chiso766.worker")

# The versions every private access below was checked against. Moving one: re-check each access
# marked SLF001 and each fix, then update this and the lock.
TESTED_VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}


class UntestedVersionsError(SystemExit):
    """A library these fixes patch is at a version they were not checked against."""


def check_versions(version_of: Callable[[str], str | None] = installed_version) -> None:
    """Refuse (UntestedVersionsError, which exits with its message) unless every library in
    `TESTED_VERSIONS` is installed at that version, or CHISO766_ALLOW_UNTESTED_VERSIONS=1."""
    untested = untested_versions(TESTED_VERSIONS, version_of)
    if not untested:
        return
    found, tested = describe(untested), describe(TESTED_VERSIONS)
    if allowed_anyway(found, tested, "running", log):
        return
    raise UntestedVersionsError(
        f"chiso766 refuses to start: this environment has {found}, but the worker uses private internals "
        f"of these libraries (streams/faust_fixes.py) and was tested with {tested} only. "
        "Install the locked versions: `bash deploy/setup-python.sh` (pip install --require-hashes -r "
        f"requirements.lock). To try these versions anyway, set {ALLOW_UNTESTED}=1 and run the whole suite "
        "(`bash scripts/test.sh`) first.")


check_versions()

# After the check, so that an untested faust-streaming fails with its message, not an ImportError.
from faust.sensors.monitor import Monitor  # noqa: E402
from faust.streams import _current_event  # noqa: E402 - private (an import, so no SLF001); faust-streaming 0.15.3
from faust.transport.drivers import TRANSPORTS  # noqa: E402
from faust.transport.drivers import aiokafka as faust_aiokafka  # noqa: E402
from mode.services import WaitResults  # noqa: E402

FETCH_MAX_WAIT_MS = 50
TRANSPORT = "chiso766"  # the broker URL scheme of the worker's app


class ShortFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust builds its consumer with fetch_max_wait_ms=1500. aiokafka keeps one fetch in flight per
    broker, and a fetch that holds only partitions with nothing new (tallies, petitions) parks
    there for the full wait while the busy partitions queue behind it: 1.5 s stalls at a steady
    2,000 events/s. A short wait costs a few empty fetches a second instead."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes the wait as a literal; aiokafka reads it when the consumer starts, so it is set
        # on the consumer before that.
        consumer._fetch_max_wait_ms = min(consumer._fetch_max_wait_ms, FETCH_MAX_WAIT_MS)  # noqa: SLF001 - no public setter; read in AIOKafkaConsumer.start; checked in aiokafka 0.14.0
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the short fetch wait and the two fixes below."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ShortFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
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
        await super().perform_seek()
        acks_enabled_for = self.app.topics.acks_enabled_for
        # `_committed_offset`: Faust's Consumer's own record of its commits (faust-streaming 0.15.3).
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

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """Faust's consumer hands every message to its streams with `wait_first(deliver(message),
        suspend_flow.wait())`, which creates four tasks and an `asyncio.wait` per message so that a
        rebalance can interrupt a delivery blocked on a full stream buffer. Almost every delivery
        finishes without blocking, and those tasks were a quarter of a worker's time on one-event
        messages. The delivery now runs in place first; only if it has to wait does the rest of it
        (continued exactly where it stopped) go to `wait_first` with the other waits, as before."""
        first, others = coros[0], coros[1:]
        # `_stopped` / `_crashed`: mode's Service events (mode-streaming 0.7.1, faust-streaming 0.15.3).
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
        return await super().wait_first(*coros, timeout=timeout)


class Producer(faust_aiokafka.Producer):
    def _new_producer(self, transactional_id: str | None = None) -> Any:
        producer = super()._new_producer(transactional_id=transactional_id)
        track_every_topic_sent_to(producer.client)
        return producer


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with `Consumer` and `Producer` above."""

    Consumer = Consumer
    Producer = Producer


# Faust's transport registry: a broker URL `chiso766://host:port` selects `Transport`. Registered when
# this module is imported, which the app that names the scheme has to do to name it.
TRANSPORTS[TRANSPORT] = f"{__name__}:Transport"


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


def track_every_topic_sent_to(client: Any) -> None:
    """A first worker on a fresh broker stuck for good: a changelog batch never delivered, no offset
    ever committed, the sender spinning at ~60 % CPU, SIGTERM hanging in the producer's flush.

    An aiokafka client refreshes metadata only for the topics it tracks, and every refresh replaces
    its whole cache; with no topic tracked it fetches them all. Faust refreshes after creating each
    table's changelog topic while its producer tracks nothing yet, so the producer knows every topic
    without tracking any, and `send` / `send_batch` (`_wait_on_metadata`) track only a topic the cache
    lacks. On a fresh KRaft broker the last changelog created may be missing from that refresh; its
    first write tracks it alone, the next refresh drops every other topic from the cache, and a
    batch already queued for one of them (another table's changelog, the tallies topic) has no
    leader any more: the sender forces refresh after refresh that never ask for its topic, until
    Faust's 20-minute request timeout, while the agent awaits that delivery. Seen here as a refresh
    asking only for `…-tallies-changelog` that dropped the state changelogs (1 fresh stack in 5);
    `tests/integration/test_worker_stops.py` queues a batch that way against a real broker. Every
    topic `client` is asked to send to is now tracked before its first batch is queued, so no
    refresh can drop a topic with a batch waiting."""
    # Private: the one path both `send` and `send_batch` take before queueing; checked in aiokafka 0.14.0.
    original = client._wait_on_metadata  # noqa: SLF001 - see the docstring; aiokafka 0.14.0

    async def _wait_on_metadata(topic: str) -> Any:
        client.add_topic(topic)  # public; a set lookup once the topic is tracked
        return await original(topic)

    client._wait_on_metadata = _wait_on_metadata  # noqa: SLF001 - as above


# --- private internals other modules need, reached only here -------------------------------------


def aiokafka_producer(app: Any) -> Any:
    """The aiokafka producer under the app's Faust producer (the one Faust flushes before commits)."""
    return app.producer._ensure_producer()  # noqa: SLF001 - Faust has no public accessor for its aiokafka producer; checked in faust-streaming 0.15.3


@contextmanager
def acting_for(event: Any) -> Iterator[None]:
    """Table writes made outside Faust's per-event iteration, attributed to `event`'s partition.

    Faust finds the partition of a write (the RocksDB store picks its per-partition database by it)
    from the current event, which `take_events` batches do not set; the writes of a batch all belong
    to one input partition, so any of its events stands in.
    """
    if event is None:
        yield
        return
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


async def refresh_metadata(consumer: Any) -> None:
    """Fetch cluster metadata now, for a topic the aiokafka consumer is not subscribed to."""
    await consumer._client.force_metadata_update()  # noqa: SLF001 - no public metadata refresh for an unsubscribed topic; checked in aiokafka 0.14.0


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
