"""The Faust app: topics, agents, tables and timers — wiring only. `streams.core` decides what is
written and sent where, and in which order; `Worker` performs its plans against Kafka and Redis.

Per namespace:
  NS.dossier-events / NS.petition-events   P partitions, keyed by dossier code / petition id;
                                           a message is one event or a JSON array of events
  NS.catalog-events                        1 partition; every worker reads all of it
  NS.dead-letter                           rejected input: original bytes, reason, topic/partition/offset
  NS.tallies                               1 partition; per-batch tally snapshots for the projector
Tables: dossier state and petition state (co-partitioned with their topics), the projector's tallies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import messages
from contracts.messages import CONTROL_HEADER, SourceKind
from schemas import decode_message
from schemas import events as ev
from scoring.alerts import AlertPolicy
from scoring.directory import Directory
from streams import commands, metrics
from streams.changelog import TableWriter, delivered
from streams.config import CATALOG_TOPIC, DEAD_LETTER_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, TALLY_TOPIC, Settings
from streams.core import Batch, ProjectorCore, SourcePlan, WorkerCore
from streams.faust_fixes import FETCH_MAX_WAIT_MS, TRANSPORT, QuietMonitor
from streams.heartbeat import Heartbeat
from streams.projection_writer import queue_alerts, queue_listings, queue_rejections, write_scores
from streams.resilience import redis_client
from streams.scorer import RawMessage
from streams.tally_book import TallyBook
from support.resources import load_calendar, load_ruleset

log = logging.getLogger("chiso766.worker")
TOPIC_OF = {SourceKind.DOSSIER: DOSSIER_TOPIC, SourceKind.PETITION: PETITION_TOPIC}


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id, broker=f"{TRANSPORT}://{settings.bootstrap}", store=settings.store,
        datadir=f"{settings.data_dir}/{settings.namespace}", web_enabled=False,
        topic_partitions=settings.partitions, topic_allow_declare=True, consumer_auto_offset_reset="earliest",
        broker_session_timeout=10, broker_heartbeat_interval=1, broker_rebalance_timeout=30,
        broker_commit_interval=1.0, producer_max_request_size=16 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024, stream_buffer_maxsize=20000, table_standby_replicas=0,
        key_serializer="raw", value_serializer="raw", monitor=QuietMonitor(),
        topic_replication_factor=settings.replication or 1,
    )
    worker = Worker(app, settings)

    @app.agent(worker.source_topics[DOSSIER_TOPIC])
    async def dossiers(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            await worker.handle(SourceKind.DOSSIER, events)

    @app.agent(worker.source_topics[PETITION_TOPIC])
    async def petitions(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            await worker.handle(SourceKind.PETITION, events)

    @app.agent(worker.tally_topic)
    async def project(stream: faust.StreamT) -> None:
        async for events in stream.take_events(2000, within=settings.batch_within):
            await worker.project(events)

    @app.timer(0.25)
    async def flush_scores() -> None:
        await worker.score_due()

    @app.timer(settings.tick_seconds)
    async def tick() -> None:
        await worker.tick()

    @app.task
    async def follow_catalog() -> None:
        await worker.follow_catalog()

    @app.task
    async def take_commands() -> None:
        await commands.follow(worker.redis, settings)

    @app.task
    async def announce() -> None:
        # The worker's logging setup leaves some libraries at DEBUG; formatting records nobody
        # reads cost a tenth of the hot path.
        for name in ("", "aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(logging.WARNING)
        await worker.heartbeat()

    return app


class Worker:
    """The shell around the cores: Faust topics and tables, Redis, and the catalogue follower."""

    def __init__(self, app: faust.App, settings: Settings):
        self.app, self.settings = app, settings
        ruleset, calendar = load_ruleset(), load_calendar()
        self.directory = Directory()
        self.core = WorkerCore(settings.partitions, settings.mode, ruleset, calendar, self.directory, AlertPolicy())
        self.projector = ProjectorCore(TallyBook(ruleset, calendar, self.directory), settings.score_every)
        self.ruleset = ruleset
        self.redis = redis_client(settings.redis_url)  # waits out a Redis outage
        self.keys = settings.keys
        self.catalog_ready = asyncio.Event()
        self.scoring = asyncio.Lock()
        self.catalog_position = 0
        self.partition_events: dict[tuple[SourceKind, int], faust.EventT] = {}  # the latest event per source

        def raw_topic(name: str, partitions: int) -> faust.TopicT:
            return app.topic(settings.topic(name), key_type=bytes, value_type=bytes, key_serializer="raw",
                             value_serializer="raw", partitions=partitions)

        self.source_topics = {DOSSIER_TOPIC: raw_topic(DOSSIER_TOPIC, settings.partitions),
                              PETITION_TOPIC: raw_topic(PETITION_TOPIC, settings.partitions),
                              CATALOG_TOPIC: raw_topic(CATALOG_TOPIC, 1)}
        self.dead_letter_topic = raw_topic(DEAD_LETTER_TOPIC, 1)
        self.tally_topic = raw_topic(TALLY_TOPIC, 1)
        # Keys are entity codes as bytes, hashed like the topics' keys: use_partitioner puts each state
        # in the changelog partition of its input partition, so recovery restores it where it is needed.
        self.tables = {
            SourceKind.DOSSIER: app.Table("dossier-state", key_type=bytes, value_type=bytes,
                                          partitions=settings.partitions, use_partitioner=True),
            SourceKind.PETITION: app.Table("petition-state", key_type=bytes, value_type=bytes,
                                           partitions=settings.partitions, use_partitioner=True),
        }
        self.tally_table = app.Table("tallies", key_type=bytes, value_type=bytes, partitions=1, use_partitioner=True)
        self.writers = {kind: TableWriter(app, table, f"{kind}-state") for kind, table in self.tables.items()}
        self.tally_writer = TableWriter(app, self.tally_table, "tallies")
        self.beat = Heartbeat(settings, self.redis, lambda tp: self.app.consumer.highwater(tp))

    # --- the catalogue ---------------------------------------------------------------------------

    async def follow_catalog(self) -> None:
        """Every worker folds the whole catalogue (units, procedures) into its directory."""
        settings = self.settings
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
        await consumer.start()
        partition = TopicPartition(settings.topic(CATALOG_TOPIC), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        try:
            while True:
                self.catalog_position = await consumer.position(partition)
                if self.catalog_position >= end:
                    self.catalog_ready.set()
                batches = await consumer.getmany(partition, timeout_ms=100, max_records=5000)
                not_after = settings.not_after()
                for record in batches.get(partition, ()):
                    # Catalogue events forwarded from another topic come as one array.
                    for event in decode_message(record.value, not_after):
                        if isinstance(event, ev.UnitUpserted | ev.ProcedureUpserted):
                            self.directory.apply(event)
                        else:
                            # The metric only, not `PREFIX:rejected`: every worker reads the whole
                            # catalogue, so a shared count would grow once per worker.
                            metrics.REJECTED.labels(reason=getattr(event, "reason", "not_catalogue")).inc()
        finally:
            await consumer.stop()

    async def catalogue_through(self, offset: int, patience: float = 30.0) -> None:
        """Until the catalogue follower has folded the catalogue up to `offset` (exclusive) — or,
        should the follower be stuck, `patience` seconds: a replay then closes on the catalogue it
        has (scores catch up on the next catalogue change) instead of never closing."""
        deadline = time.monotonic() + patience
        while self.catalog_position < offset:
            if time.monotonic() > deadline:
                log.warning("catalogue at offset %d, a watermark expected %d: closing without the rest",
                            self.catalog_position, offset)
                return
            await asyncio.sleep(0.02)

    # --- input batches ---------------------------------------------------------------------------

    async def handle(self, kind: SourceKind, events: list[faust.EventT]) -> None:
        with self.beat.batch(str(kind), events):
            await self._handle(kind, events)

    async def _handle(self, kind: SourceKind, events: list[faust.EventT]) -> None:
        started = time.perf_counter()
        await self.catalog_ready.wait()
        batch = self.core.split(kind, (RawMessage(
            event.message.key, event.message.value, event.message.topic, event.message.partition,
            event.message.offset, control=_is_control(event.message.headers)) for event in events))
        metrics.BATCH_SIZE.observe(len(events))
        self._record_lag(kind, events)
        for event in events:
            self.partition_events[(kind, event.message.partition)] = event
        await self._restore(batch)
        await self.catalogue_through(batch.catalog_end)  # a watermark closes on the catalogue published before it
        plans = self.core.process(batch, int(time.time()), self.settings.not_after())
        deliveries = [await self._send(plan) for plan in plans]
        await asyncio.gather(*(self._finish(plan, sent) for plan, sent in zip(plans, deliveries, strict=True)))
        if events:
            oldest = min(event.message.timestamp for event in events)
            metrics.EVENT_AGE.observe(max(0.0, time.time() - oldest))
            if os.environ.get("CHISO766_TRACE_BATCHES"):
                log.warning("batch %s: %d messages, oldest %.3fs old, handled in %.3fs", kind, len(events),
                            time.time() - oldest, time.perf_counter() - started)

    async def _restore(self, batch: Batch) -> None:
        """Sources new to this worker: rebuilt from their state table and saved clock."""
        for source in self.core.missing(batch.sources):
            as_of = int(await self.redis.hget(self.keys.clock, str(source)) or 0)
            stored = ((key.decode(), value) for key, value in self.tables[source.kind].items())
            # The wall clock as the epoch of the source's sequence numbers: a later restore, on this
            # worker or another (clocks agreeing to well within the time between them), numbers higher.
            self.core.restore(source, stored, as_of, epoch=time.time_ns() // 1_000_000)

    async def _send(self, plan: SourcePlan) -> list[asyncio.Future]:
        """Steps 1–2 of a plan: state, dead letters, reroutes; returns the changelog deliveries."""
        source = plan.source
        metrics.EVENTS_IN.labels(topic=source.kind).inc(plan.events)
        deliveries = await self.writers[source.kind].write(
            source.partition, plan.state_writes, self.partition_events.get((source.kind, source.partition)))
        for letter in plan.dead_letters:
            await self.dead_letter_topic.send(value=letter)
        for reason, count in plan.rejected.items():
            metrics.REJECTED.labels(reason=reason).inc(count)
        for message in plan.reroutes:
            await self.source_topics[message.topic].send(key=message.key, value=message.value,
                                                         partition=message.partition)
        return deliveries

    async def _finish(self, plan: SourcePlan, deliveries: list[asyncio.Future]) -> None:
        """Steps 3–5 of a plan: the Redis pipeline, then the tally snapshot, then the deliveries."""
        pipe = self.redis.pipeline(transaction=False)
        listing_calls = queue_listings(pipe, self.keys, plan.listings)
        alert_calls = queue_alerts(pipe, self.keys, plan.alerts, self.settings.alert_stream_maxlen)
        pipe.hset(self.keys.clock, str(plan.source), plan.as_of)
        if plan.rejected:  # after the lists and alerts: their replies are read by position
            queue_rejections(pipe, self.keys, plan.rejected, self.settings.now())
        replies = await pipe.execute()
        metrics.ALERTS.inc(sum(int(sent) for sent in replies[listing_calls:listing_calls + alert_calls]))
        for tally in ([plan.tally] if plan.tally is not None else []) + plan.closes:
            await self.tally_topic.send(key=tally.source.encode(), value=messages.encode(tally))
        await delivered(deliveries)

    def _record_lag(self, kind: SourceKind, events: list[faust.EventT]) -> None:
        last: dict[TopicPartition, int] = {}
        for event in events:
            message = event.message
            last[message.tp] = max(last.get(message.tp, -1), message.offset)
        lag = 0
        for tp, offset in last.items():
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - offset - 1)
        metrics.CONSUMER_LAG.labels(topic=kind).set(lag)

    # --- the clock -------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        await self.beat.beat()

    async def tick(self) -> None:
        await self.heartbeat()
        if not self.catalog_ready.is_set():
            return
        for plan in self.core.tick(int(time.time())):
            await self._finish(plan, await self._send(plan))

    # --- the projector ---------------------------------------------------------------------------

    async def project(self, events: list[faust.EventT]) -> None:
        with self.beat.batch("project", events):
            await self._project(events)

    async def _project(self, events: list[faust.EventT]) -> None:
        started = time.perf_counter()
        await self.catalog_ready.wait()
        if not self.projector.loaded:
            self.projector.load(self.tally_table.items())
        plan = self.projector.apply([event.message.value for event in events], time.monotonic())
        if plan.ignored:
            log.warning("%d values on the tally topic were no tally snapshot: ignored", plan.ignored)
        deliveries = await self.tally_writer.write(0, plan.table_writes, events[-1] if events else None)
        # Another worker's source may have read further into the catalogue than this one.
        await self.catalogue_through(plan.catalog_end)
        await self.score_due(force=bool(plan.tokens))
        for token, source, as_of in plan.tokens:
            await self.redis.hset(self.keys.replay(token), source, as_of)
        if plan.sources_as_of:
            await self.redis.hset(self.keys.sources, mapping=plan.sources_as_of)
        await delivered(deliveries)
        metrics.PROJECTION_SECONDS.observe(time.perf_counter() - started)
        if os.environ.get("CHISO766_TRACE_BATCHES"):
            log.warning("projector: %d messages, %d periods pending, handled in %.3fs", len(events),
                        len(self.projector.pending), time.perf_counter() - started)

    async def score_due(self, force: bool = False) -> None:
        # One scoring at a time: the timer's and the projector's would otherwise interleave, and a
        # period the timer scored before a replay's watermark could be written after the watermark's
        # rescoring of it — after `replay --wait` had returned.
        async with self.scoring:
            for period in self.projector.due_periods(time.monotonic(), force):
                units, officers = self.projector.score(period)
                await write_scores(self.redis, self.keys, period, self.projector.as_of, self.ruleset, units, officers)


def _is_control(headers: Any) -> bool:
    """A watermark / rebuild message: it carries the control header (event messages carry none, and
    are most of what a worker reads, so they cost no dict)."""
    return bool(headers) and CONTROL_HEADER in dict(headers)
