"""Publishing a history into a namespace, and waiting until its workers have scored all of it.

Catalogue events go first, to the catalogue topic. Dossier and petition events go in event-time
order as JSON-array messages, each holding events of one partition (keyed by the first entity, and
sent to that partition explicitly). Lines that do not decode are sent as they are, so the worker's
dead-letter path sees them. Last, every input partition gets a watermark carrying the history's
latest event time and a token; the projector records the token per source once it got through.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from schemas import Rejection, decode
from schemas import events as ev
from scoring.engine import petition_link
from scoring.lifecycle import epoch_seconds
from streams.config import CATALOG_TOPIC, CONTROL_HEADER, DOSSIER_TOPIC, PETITION_TOPIC, Settings
from streams.partitioning import partition_for
from streams.topics import ensure_topics

BATCH_EVENTS = 500


@dataclass
class Published:
    token: str
    events: int
    malformed: int
    latest: int
    sources: list[str]


class _Batcher:
    def __init__(self, producer: AIOKafkaProducer, topic: str, partitions: int):
        self.producer, self.topic, self.partitions = producer, topic, partitions
        self.pending: dict[int, list[tuple[str, bytes]]] = {}
        self.futures: list[asyncio.Future] = []

    async def add(self, key: str, body: bytes, size: int = BATCH_EVENTS) -> None:
        partition = partition_for(key, self.partitions)
        group = self.pending.setdefault(partition, [])
        group.append((key, body))
        if len(group) >= size:
            await self.flush(partition)

    async def flush(self, partition: int | None = None) -> None:
        for number in [partition] if partition is not None else list(self.pending):
            group = self.pending.pop(number, [])
            if group:
                value = b"[" + b",".join(body for _, body in group) + b"]"
                self.futures.append(await self.producer.send(self.topic, value, key=group[0][0].encode(),
                                                             partition=number))


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
                           token: str, kind: str = "watermark") -> None:
    """Every input partition gets the control message; it names the catalogue's end offset, so a
    worker folds the whole catalogue published so far before it closes the replay."""
    await producer.flush()
    catalog_end = await _catalog_end(settings)
    watermark = orjson.dumps({"kind": kind, "as_of": as_of, "token": token, "catalog_end": catalog_end})
    for topic in (DOSSIER_TOPIC, PETITION_TOPIC):
        for partition in range(partitions):
            await producer.send(settings.topic(topic), watermark, partition=partition,
                                headers=[(CONTROL_HEADER, b"watermark")])


async def send_watermarks(settings: Settings, as_of: int, kind: str = "watermark") -> Published:
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
    return Published(token, 0, 0, as_of, [f"{kind}{n}" for kind in ("d", "p") for n in range(partitions)])


async def publish(settings: Settings, lines: Iterable[bytes], on_progress: Callable[[int], None] | None = None,
                  batch_events: int = BATCH_EVENTS, watermark: bool = True, rate: float | None = None) -> Published:
    """Publish a history; with `rate`, at about that many events per second (a live feed)."""
    partitions = (await ensure_topics(settings))[settings.topic(DOSSIER_TOPIC)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, max_request_size=16 * 1024 * 1024,
                                linger_ms=20, acks="all")
    await producer.start()
    token = uuid.uuid4().hex
    events = malformed = 0
    latest = 0
    try:
        dossiers = _Batcher(producer, settings.topic(DOSSIER_TOPIC), partitions)
        petitions = _Batcher(producer, settings.topic(PETITION_TOPIC), partitions)
        started = time.monotonic()
        for count, line in enumerate(lines, start=1):
            if rate and count % 100 == 0:
                ahead = count / rate - (time.monotonic() - started)
                if ahead > 0:
                    await dossiers.flush()
                    await petitions.flush()
                    await asyncio.sleep(ahead)
            line = line.strip()
            if not line:
                continue
            event = decode(line)
            if isinstance(event, Rejection):
                malformed += 1
                await producer.send(settings.topic(DOSSIER_TOPIC), line, partition=count % partitions)
                continue
            events += 1
            latest = max(latest, epoch_seconds(event.occurred_at))
            key = ev.entity_key(event)
            if isinstance(event, ev.DossierEvent):
                await dossiers.add(key, line, batch_events)
            elif isinstance(event, ev.PetitionEvent):
                await petitions.add(key, line, batch_events)
                if isinstance(event, ev.PetitionReceived) and event.dossier_code:
                    # The worker forwards this link too, but only after it folds the petition, which
                    # may be after the dossier partition's watermark: send it ahead of that.
                    await dossiers.add(event.dossier_code, ev.encode(petition_link(event)), batch_events)
            else:
                await producer.send(settings.topic(CATALOG_TOPIC), line, key=key.encode(), partition=0)
            if on_progress and count % 10000 == 0:
                on_progress(count)
        await dossiers.flush()
        await petitions.flush()
        if watermark:
            await _send_watermarks(producer, settings, partitions, latest, token)
        await producer.flush()
        for future in dossiers.futures + petitions.futures:
            await future
    finally:
        await producer.stop()
    sources = [f"{kind}{n}" for kind in ("d", "p") for n in range(partitions)]
    return Published(token, events, malformed, latest, sources)


async def finished(settings: Settings, published: Published) -> bool:
    client = aioredis.from_url(settings.redis_url)
    try:
        done = await client.hlen(f"{settings.redis_prefix}:replay:{published.token}")
        return done >= len(published.sources)
    finally:
        await client.aclose()


async def wait_for(settings: Settings, published: Published, timeout: float,
                   on_progress: Callable[[int, int], None] | None = None,
                   worker: subprocess.Popen | None = None) -> None:
    """Until the projector has recorded the replay's watermark for every source."""
    client = aioredis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = await client.hgetall(f"{settings.redis_prefix}:replay:{published.token}")
            if on_progress:
                on_progress(len(done), len(published.sources))
            if len(done) >= len(published.sources):
                return
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the replay worker exited with status {worker.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(done)} of {len(published.sources)} sources caught up in {timeout:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        await client.aclose()


async def worker_running(settings: Settings) -> bool:
    client = aioredis.from_url(settings.redis_url)
    try:
        return bool(await client.exists(f"{settings.redis_prefix}:worker"))
    finally:
        await client.aclose()


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
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()
