"""Publishing a history into a namespace, and waiting until its workers have scored all of it.

Catalogue events go first, to the catalogue topic. Dossier and petition events go in event-time
order as JSON-array messages, each holding events of one partition (keyed by the first entity, and
sent to that partition explicitly). Lines that do not decode are sent as they are, so the worker's
dead-letter path sees them. Last, every input partition gets a watermark carrying the history's
latest event time and a token; the projector records the token per source once it got through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from redis.exceptions import RedisError

from contracts import messages
from contracts.messages import CONTROL_HEADER, Control, all_sources
from schemas import Rejection, decode
from schemas import events as ev
from scoring.engine import petition_link
from scoring.lifecycle import epoch_seconds
from streams.config import CATALOG_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, Settings
from streams.partitioning import ArrayGrouper, Outgoing
from streams.topics import ensure_topics

BATCH_EVENTS = 500
log = logging.getLogger("chiso766.replay")


@dataclass
class Published:
    token: str
    events: int
    malformed: int
    latest: int
    sources: list[str]


@dataclass
class HistoryCount:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    latest: int = 0  # the latest event time (epoch seconds)


def history_messages(lines: Iterable[bytes], partitions: int, count: HistoryCount,
                     batch_events: int = BATCH_EVENTS, flush_every: int | None = None,
                     not_after: int | None = None) -> Iterator[Outgoing | None]:
    """The messages a history becomes, in order, each array as soon as it is full. With
    `flush_every`, all partly filled arrays go out every that many lines, followed by None (a
    point where a paced publisher may wait). `count` is kept up to date as lines are read. A line
    that does not decode, or (given `not_after`) an event from the future, is sent as it is for the
    worker to dead-letter, and does not count towards the closing watermark's time."""
    arrays = ArrayGrouper(partitions, batch_events)
    future = ev.FutureCheck(not_after) if not_after is not None else None

    def add(topic: str, key: str, body: bytes) -> Iterator[Outgoing]:
        filled = arrays.add(topic, key, body)
        if filled is not None:
            yield filled

    for line in lines:
        count.lines += 1
        if flush_every and count.lines % flush_every == 0:
            yield from arrays.drain()
            yield None
        line = line.strip()
        if not line:
            continue
        event = decode(line)
        if isinstance(event, Rejection) or (future is not None and future.first_future_field(event) is not None):
            count.malformed += 1
            yield Outgoing(DOSSIER_TOPIC, count.lines % partitions, None, line)
            continue
        count.events += 1
        count.latest = max(count.latest, epoch_seconds(event.occurred_at))
        key = ev.entity_key(event)
        if isinstance(event, ev.DossierEvent):
            yield from add(DOSSIER_TOPIC, key, line)
        elif isinstance(event, ev.PetitionEvent):
            yield from add(PETITION_TOPIC, key, line)
            if isinstance(event, ev.PetitionReceived) and event.dossier_code:
                # The worker forwards this link too, but only after it folds the petition, which
                # may be after the dossier partition's watermark: send it ahead of that.
                yield from add(DOSSIER_TOPIC, event.dossier_code, ev.encode(petition_link(event)))
        else:
            yield Outgoing(CATALOG_TOPIC, 0, key.encode(), line)
    yield from arrays.drain()


async def _catalog_end(settings: Settings) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None)
    await consumer.start()
    try:
        partition = TopicPartition(settings.topic(CATALOG_TOPIC), 0)
        return (await consumer.end_offsets([partition]))[partition]
    finally:
        await consumer.stop()


async def _send_watermarks(producer: AIOKafkaProducer, settings: Settings, partitions: int, as_of: int,
                           token: str, kind: Literal["watermark", "rebuild"] = "watermark",
                           catalog_end: int | None = None) -> None:
    """Every input partition gets the control message; it names the catalogue's end offset (looked
    up unless given), so a worker folds the whole catalogue published so far before it closes."""
    await producer.flush()
    if catalog_end is None:
        catalog_end = await _catalog_end(settings)
    watermark = messages.encode(Control(kind=kind, as_of=as_of, token=token, catalog_end=catalog_end))
    for topic in (DOSSIER_TOPIC, PETITION_TOPIC):
        for partition in range(partitions):
            await producer.send(settings.topic(topic), watermark, partition=partition,
                                headers=[(CONTROL_HEADER, kind.encode())])


async def send_watermarks(settings: Settings, as_of: int,
                          kind: Literal["watermark", "rebuild"] = "watermark") -> Published:
    """Close a replay published in parts: every source advances to `as_of` and reports the token.
    With kind "rebuild", every source re-sends all it knows, so the projection is rewritten whole."""
    partitions = (await ensure_topics(settings))[settings.topic(DOSSIER_TOPIC)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    await producer.start()
    token = uuid.uuid4().hex
    try:
        await _send_watermarks(producer, settings, partitions, as_of, token, kind)
        await producer.flush()
    finally:
        await producer.stop()
    return Published(token, 0, 0, as_of, sources(partitions))


async def publish(settings: Settings, lines: Iterable[bytes], on_progress: Callable[[int], None] | None = None,
                  batch_events: int = BATCH_EVENTS, watermark: bool = True, rate: float | None = None) -> Published:
    """Publish a history; with `rate`, at about that many events per second (a live feed)."""
    partitions = (await ensure_topics(settings))[settings.topic(DOSSIER_TOPIC)]
    count = HistoryCount()
    messages = history_messages(lines, partitions, count, batch_events, flush_every=100 if rate else None,
                                not_after=settings.not_after())
    started = time.monotonic()
    reported = 0

    def paced(message: Outgoing | None) -> float:
        nonlocal reported
        if on_progress and count.lines // 10000 > reported:
            reported = count.lines // 10000
            on_progress(count.lines)
        return count.lines / rate - (time.monotonic() - started) if rate and message is None else 0.0

    token = await send_messages(settings, messages, partitions, latest=(lambda: count.latest) if watermark else None,
                                pace=paced)
    return Published(token, count.events, count.malformed, count.latest, sources(partitions))


def sources(partitions: int) -> list[str]:
    """The input partitions a watermark must get through: `d0`… dossier, `p0`… petition partitions."""
    return [str(source) for source in all_sources(partitions)]


async def send_messages(settings: Settings, messages: Iterable[Outgoing | None], partitions: int,
                        latest: Callable[[], int] | None = None,
                        pace: Callable[[Outgoing | None], float] = lambda _: 0.0) -> str:
    """Send prepared messages, then (given `latest`, the history's latest event time once all are
    sent) the closing watermarks; returns the watermark token. `pace` may ask for a pause (seconds)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, max_request_size=16 * 1024 * 1024,
                                linger_ms=20, acks="all")
    await producer.start()
    token = uuid.uuid4().hex
    deliveries, catalogue = [], []
    # The catalogue's end before this history, looked up while it is sent; its own catalogue
    # messages then move the end on by their delivered offsets.
    catalog_lookup = asyncio.ensure_future(_catalog_end(settings)) if latest is not None else None
    try:
        for message in messages:
            pause = pace(message)
            if pause > 0:
                await asyncio.sleep(pause)
            if message is not None:
                delivery = await producer.send(settings.topic(message.topic), message.value, key=message.key,
                                               partition=message.partition)
                deliveries.append(delivery)
                if message.topic == CATALOG_TOPIC:
                    catalogue.append(delivery)
        if catalog_lookup is not None and latest is not None:
            await producer.flush()
            catalog_end = max([await catalog_lookup] + [(await sent).offset + 1 for sent in catalogue[-1:]])
            await _send_watermarks(producer, settings, partitions, latest(), token, catalog_end=catalog_end)
        await producer.flush()
        await asyncio.gather(*deliveries)  # raises what a failed delivery raised
    finally:
        if catalog_lookup is not None and not catalog_lookup.done():
            catalog_lookup.cancel()
        await producer.stop()
    return token


async def finished(settings: Settings, published: Published) -> bool:
    client = aioredis.from_url(settings.redis_url)
    try:
        done = await client.hlen(settings.keys.replay(published.token))
        return done >= len(published.sources)
    finally:
        await client.aclose()


async def wait_for(settings: Settings, published: Published, timeout: float,
                   on_progress: Callable[[int, int], None] | None = None,
                   worker: subprocess.Popen | None = None, poll_seconds: float = 0.5) -> None:
    """Until the projector has recorded the replay's watermark for every source. Redis going away
    meanwhile is waited out (the worker does the same), within `timeout`."""
    client = aioredis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
    deadline = time.monotonic() + timeout
    done: dict = {}
    outage = 0
    try:
        while True:
            try:
                done = await client.hgetall(settings.keys.replay(published.token))
                if outage:
                    log.warning("Redis answers again after %d failed polls", outage)
                outage = 0
            except (RedisError, OSError) as error:
                outage += 1
                if outage == 1:
                    log.warning("Redis unreachable while waiting (%s): retrying", error)
            if on_progress:
                on_progress(len(done), len(published.sources))
            if len(done) >= len(published.sources):
                return
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the replay worker exited with status {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(done)} of {len(published.sources)} sources caught up in {timeout:.0f}s"
                                   + (" (Redis unreachable)" if outage else ""))
            await asyncio.sleep(min(5.0, poll_seconds * 2 ** min(outage, 4)))
    finally:
        await client.aclose()


async def worker_running(settings: Settings) -> bool:
    client = aioredis.from_url(settings.redis_url)
    try:
        return bool(await client.exists(settings.keys.worker))
    finally:
        await client.aclose()


def stop_worker(process: subprocess.Popen, grace: float = 30.0) -> int:
    """SIGTERM a worker started by `start_worker` (its own process group), SIGKILL it after `grace`
    seconds: a replay never leaves its worker behind. Returns its exit status."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    return process.returncode


def start_worker(settings: Settings, mode: str, log_path: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "cli.app", "worker", "--namespace", settings.namespace, "--mode", mode,
               "--partitions", str(settings.partitions)]
    env = {**os.environ, "CHISO766_BOOTSTRAP": settings.bootstrap, "CHISO766_REDIS_URL": settings.redis_url}
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, which outlives this call
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


async def read_namespace(source: Settings, since_ms: int) -> list[bytes]:
    """Events of a namespace, as JSON lines: its whole catalogue, then its dossier and petition
    messages from the first offset at or after `since_ms` (Kafka timestamps), in timestamp order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from msgspec import Raw
    from msgspec.json import Decoder

    split = Decoder(list[Raw])
    consumer = AIOKafkaConsumer(bootstrap_servers=source.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[int, int, bytes]] = []
    try:
        partitions = [TopicPartition(topic, number) for topic in
                      (source.topic(CATALOG_TOPIC), source.topic(DOSSIER_TOPIC), source.topic(PETITION_TOPIC))
                      for number in sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions
                                                   if tp.topic != source.topic(CATALOG_TOPIC)})
        for tp in partitions:
            found_offset = starts.get(tp)
            if tp.topic == source.topic(CATALOG_TOPIC):
                await consumer.seek_to_beginning(tp)
            elif found_offset is None:
                consumer.seek(tp, ends[tp])
            else:
                consumer.seek(tp, found_offset.offset)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp] or any(key == CONTROL_HEADER for key, _ in record.headers or ()):
                        continue
                    catalogue = tp.topic == source.topic(CATALOG_TOPIC)
                    order = -1 if catalogue else record.timestamp
                    if record.value[:1] == b"[":
                        found += [(order, record.offset, bytes(item)) for item in split.decode(record.value)]
                    else:
                        found.append((order, record.offset, record.value))
    finally:
        await consumer.stop()
    found.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in found]


async def _partitions(consumer, topic: str) -> set[int]:
    from streams.faust_fixes import refresh_metadata  # the adapter of library internals (imports faust)

    await refresh_metadata(consumer)
    return consumer.partitions_for_topic(topic) or set()
