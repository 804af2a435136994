"""Fixes to faust-streaming 0.15.3 / aiokafka 0.14.0 that the worker applies before it builds the app.

Each one closes a hole found here against a real broker; each says what it closes. They patch
library classes in place, so they run once per process, from `streams.worker.run_worker`.
`QuietMonitor` is the one addition: it is handed to the app, not patched in.

They, `streams.changelog` and `streams.replay` rely on those libraries' private internals, so this
module refuses to be imported on versions other than the ones they were checked against
(`TESTED_VERSIONS`, the versions of requirements.lock) unless CHISO766_ALLOW_UNTESTED_VERSIONS=1.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Callable, Coroutine, Generator
from importlib import metadata
from typing import Any

log = logging.getLogger("chiso766.worker")

# The versions every private access below and in streams/changelog.py, streams/replay.py was checked
# against. Moving one: re-check each access marked SLF001 and each fix, then update this and the lock.
TESTED_VERSIONS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}
ALLOW_UNTESTED = "CHISO766_ALLOW_UNTESTED_VERSIONS"


class UntestedVersionsError(SystemExit):
    """A library these fixes patch is at a version they were not checked against."""


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_versions(version_of: Callable[[str], str | None] = installed_version) -> None:
    """Refuse (UntestedVersionsError, which exits with its message) unless every library in
    `TESTED_VERSIONS` is installed at that version, or CHISO766_ALLOW_UNTESTED_VERSIONS=1."""
    untested = {name: version_of(name) for name in TESTED_VERSIONS}
    untested = {name: version for name, version in untested.items() if version != TESTED_VERSIONS[name]}
    if not untested:
        return
    found = ", ".join(f"{name} {version or '(not installed)'}" for name, version in untested.items())
    tested = ", ".join(f"{name} {version}" for name, version in TESTED_VERSIONS.items())
    if os.environ.get(ALLOW_UNTESTED) == "1":
        log.warning("%s=1: running with untested %s (tested: %s)", ALLOW_UNTESTED, found, tested)
        return
    raise UntestedVersionsError(
        f"chiso766 refuses to start: this environment has {found}, but the worker patches private internals "
        f"of these libraries (streams/faust_fixes.py, streams/changelog.py) and was tested with {tested} only. "
        "Install the locked versions: `bash deploy/setup-python.sh` (pip install --require-hashes -r "
        f"requirements.lock). To try these versions anyway, set {ALLOW_UNTESTED}=1 and run the whole suite "
        "(`bash scripts/test.sh`) first.")


check_versions()

# After the check, so that an untested faust-streaming fails with its message, not an ImportError.
from faust.sensors.monitor import Monitor  # noqa: E402

FETCH_MAX_WAIT_MS = 50
_APPLIED: set[str] = set()


def apply_all() -> None:
    _short_fetch_waits()
    _seek_uncommitted_partitions_to_the_start()
    _deliver_without_tasks_when_nothing_blocks()
    _track_every_topic_a_producer_sends_to()


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
        # Private, patched in as a method of Faust's Consumer (so no SLF001): `_committed_offset`, checked
        # in faust-streaming 0.15.3.
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
        # Private, patched in as a method (so no SLF001): mode's Service `_stopped` / `_crashed` events,
        # checked in mode-streaming 0.7.1 (faust-streaming 0.15.3).
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


def tracking_wait_on_metadata(original: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """aiokafka's `AIOKafkaClient._wait_on_metadata`, made to track every topic it is asked about."""

    async def _wait_on_metadata(self, topic: str) -> Any:
        self.add_topic(topic)  # public; a set lookup once the topic is tracked
        return await original(self, topic)

    return _wait_on_metadata


def _track_every_topic_a_producer_sends_to() -> None:
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
    topic a producer sends to is now tracked before its first batch is queued, so no refresh can
    drop a topic with a batch waiting."""
    if not _once("track_sent_topics"):
        return
    from aiokafka.client import AIOKafkaClient

    # Private: the one path both `send` and `send_batch` take before queueing; checked in aiokafka 0.14.0.
    original = AIOKafkaClient._wait_on_metadata  # noqa: SLF001 - see the docstring; aiokafka 0.14.0
    AIOKafkaClient._wait_on_metadata = tracking_wait_on_metadata(original)  # noqa: SLF001 - as above


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
