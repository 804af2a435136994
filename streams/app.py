"""The Faust app: topics, agents, tables and timers. It moves bytes; `streams.scorer` and the
pure core decide every number.

Per namespace:
  NS.dossier-events / NS.petition-events   P partitions, keyed by dossier code / petition id;
                                           a message is one event or a JSON array of events
  NS.catalog-events                        1 partition; every worker reads all of it
  NS.dead-letter                           rejected input: original bytes, reason, topic/partition/offset
  NS.tallies                               1 partition; per-batch absolute tallies for the projector
Tables: dossier state and petition state (co-partitioned with their topics), the projector's tallies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Coroutine
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from cli.resources import load_calendar, load_ruleset
from schemas import decode_message
from schemas import events as ev
from scoring.alerts import AlertPolicy
from scoring.directory import Directory
from streams import commands, metrics
from streams.changelog import TableWriter, delivered
from streams.config import (
    CATALOG_TOPIC,
    CONTROL_HEADER,
    DEAD_LETTER_TOPIC,
    DOSSIER_TOPIC,
    PETITION_TOPIC,
    TALLY_TOPIC,
    Settings,
)
from streams.faust_fixes import QuietMonitor
from streams.heartbeat import Heartbeat
from streams.projection import queue_alerts, queue_listings, queue_rejections, write_scores
from streams.projector import Projector
from streams.resilience import redis_client
from streams.scorer import BatchResult, RawMessage, SourceScorer, rerouted_messages

log = logging.getLogger("chiso766.worker")
FULL_RESCORE_SECONDS = 10.0


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id, broker=f"kafka://{settings.bootstrap}", store=settings.store,
        datadir=f"{settings.data_dir}/{settings.namespace}", web_enabled=False,
        topic_partitions=settings.partitions, topic_allow_declare=True, consumer_auto_offset_reset="earliest",
        broker_session_timeout=10, broker_heartbeat_interval=1, broker_rebalance_timeout=30,
        broker_commit_interval=1.0, producer_max_request_size=16 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024, stream_buffer_maxsize=20000, table_standby_replicas=0,
        key_serializer="raw", value_serializer="raw", monitor=QuietMonitor(),
        topic_replication_factor=settings.replication or 1,
    )
    ruleset, calendar = load_ruleset(), load_calendar()
    directory = Directory()
    policy = AlertPolicy()
    projector = Projector(ruleset, calendar, directory)
    redis = redis_client(settings.redis_url)  # waits out a Redis outage
    prefix = settings.redis_prefix
    catalog_ready = asyncio.Event()
    catalog_position = [0]
    scorers: dict[str, SourceScorer] = {}
    partition_events: dict[str, faust.EventT] = {}  # the latest event of each source partition
    loaded = {"projector": False}
    last_full_rescore = [0.0]
    last_scoring = [0.0]
    pending_periods: set[str] = set()

    def raw_topic(name: str, partitions: int) -> faust.TopicT:
        return app.topic(settings.topic(name), key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw", partitions=partitions)

    dossier_topic = raw_topic(DOSSIER_TOPIC, settings.partitions)
    petition_topic = raw_topic(PETITION_TOPIC, settings.partitions)
    dead_letter_topic = raw_topic(DEAD_LETTER_TOPIC, 1)
    source_topics = {DOSSIER_TOPIC: dossier_topic, PETITION_TOPIC: petition_topic,
                     CATALOG_TOPIC: raw_topic(CATALOG_TOPIC, 1)}
    tally_topic = raw_topic(TALLY_TOPIC, 1)
    # Keys are entity codes as bytes, hashed like the topics' keys: use_partitioner puts each state
    # in the changelog partition of its input partition, so recovery restores it where it is needed.
    tables = {
        "d": app.Table("dossier-state", key_type=bytes, value_type=bytes, partitions=settings.partitions,
                       use_partitioner=True),
        "p": app.Table("petition-state", key_type=bytes, value_type=bytes, partitions=settings.partitions,
                       use_partitioner=True),
    }
    tally_table = app.Table("tallies", key_type=bytes, value_type=bytes, partitions=1, use_partitioner=True)
    writers = {kind: TableWriter(app, table, f"{kind}-state") for kind, table in tables.items()}
    tally_writer = TableWriter(app, tally_table, "tallies")
    heartbeat = Heartbeat(settings, redis, lambda tp: app.consumer.highwater(tp))

    @app.task
    async def follow_catalog() -> None:
        """Every worker folds the whole catalogue (units, procedures) into its directory."""
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        partition = TopicPartition(settings.topic(CATALOG_TOPIC), 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        try:
            while True:
                catalog_position[0] = await consumer.position(partition)
                if catalog_position[0] >= end:
                    catalog_ready.set()
                batches = await consumer.getmany(partition, timeout_ms=100, max_records=5000)
                not_after = settings.not_after()
                for record in batches.get(partition, ()):
                    # Catalogue events forwarded from another topic come as one array.
                    for event in decode_message(record.value, not_after):
                        if isinstance(event, ev.UnitUpserted | ev.ProcedureUpserted):
                            directory.apply(event)
                        else:
                            # The metric only, not `PREFIX:rejected`: every worker reads the whole
                            # catalogue, so a shared count would grow once per worker.
                            metrics.REJECTED.labels(reason=getattr(event, "reason", "not_catalogue")).inc()
        finally:
            await consumer.stop()

    async def scorer_for(kind: str, partition: int) -> tuple[SourceScorer, list | None]:
        """The partition's scorer; a new one is rebuilt from the state table and its saved clock."""
        source = f"{kind}{partition}"
        scorer = scorers.get(source)
        if scorer is not None:
            return scorer, None
        scorer = scorers[source] = SourceScorer(source, settings.partitions, ruleset, calendar, directory, policy,
                                                max(policy.approaching_minutes))
        stored = ((key.decode(), value) for key, value in tables[kind].items())
        as_of = int(await redis.hget(f"{prefix}:clock", source) or 0)
        return scorer, scorer.restore(stored, as_of)

    async def catalogue_through(offset: int, patience: float = 30.0) -> None:
        """Until the catalogue follower has folded the catalogue up to `offset` (exclusive) — or,
        should the follower be stuck, `patience` seconds: a replay then closes on the catalogue it
        has (scores catch up on the next catalogue change) instead of never closing."""
        deadline = time.monotonic() + patience
        while catalog_position[0] < offset:
            if time.monotonic() > deadline:
                log.warning("catalogue at offset %d, a watermark expected %d: closing without the rest",
                            catalog_position[0], offset)
                return
            await asyncio.sleep(0.02)

    async def emit(kind: str, result: BatchResult, replaced: list | None, watermark: str | None,
                   catalog_end: int = 0, also_closes: tuple[str, ...] = ()) -> Coroutine[Any, Any, None]:
        """Send what a batch of one source produced; returns the rest to await (Redis writes and
        changelog deliveries), so that the sources of one batch wait for them together."""
        states = {code.encode(): value for code, value in result.state_writes.items()}
        deliveries = await writers[kind].write(int(result.source[1:]), states, partition_events.get(result.source))
        entries = result.tallies
        if replaced is not None:  # first batch since (re)start: all of the source's tallies
            merged = {(owner, period): counters for owner, period, counters in replaced}
            merged.update({(owner, period): counters for owner, period, counters in result.tallies})
            entries = [(owner, period, counters) for (owner, period), counters in merged.items()]
        message = {"source": result.source, "as_of": result.as_of, "watermark": watermark,
                   "replace": replaced is not None, "entries": entries, "catalog_end": catalog_end}
        rejected: dict[str, int] = {}
        for letter in result.dead_letters:
            reason = letter.rejection.reason
            rejected[reason] = rejected.get(reason, 0) + 1
            await dead_letter_topic.send(value=orjson.dumps(letter.as_json()))
        for reason, count in rejected.items():
            metrics.REJECTED.labels(reason=reason).inc(count)
        for rerouted in rerouted_messages(result.reroute, settings.partitions):
            await source_topics[rerouted.topic].send(key=rerouted.key, value=rerouted.value,
                                                     partition=rerouted.partition)
        pipe = redis.pipeline(transaction=False)
        listing_calls = queue_listings(pipe, prefix, result.listings)
        alert_calls = queue_alerts(pipe, prefix, result.alerts, settings.alert_stream_maxlen)
        pipe.hset(f"{prefix}:clock", result.source, result.as_of)
        if rejected:  # after the lists and alerts: `finish` reads their replies by position
            queue_rejections(pipe, prefix, rejected, settings.now())

        async def finish() -> None:
            replies = await pipe.execute()
            metrics.ALERTS.inc(sum(int(sent) for sent in replies[listing_calls:listing_calls + alert_calls]))
            # After the lists are written: a replay whose watermark got through has them all.
            if message["entries"] or replaced is not None or watermark or result.as_of:
                await tally_topic.send(key=result.source.encode(), value=orjson.dumps(message))
            await send_earlier_tokens(message, also_closes)
            await delivered(deliveries)  # before the batch's events are acknowledged

        return finish()

    async def send_earlier_tokens(message: dict, tokens: tuple[str, ...]) -> None:
        """The tokens of the other controls a source met in one batch, each in a message of its own
        after the batch's (which holds all they close). One token per message used to mean that a
        replay's watermark and a rebuild in the same batch reported only the rebuild, and the
        replay never closed (found by bench.chaos: Redis wiped mid-replay)."""
        for token in tokens:
            await tally_topic.send(key=message["source"].encode(), value=orjson.dumps(
                {**message, "watermark": token, "replace": False, "entries": []}))

    def record_lag(kind: str, events: list[faust.EventT]) -> None:
        last: dict[TopicPartition, int] = {}
        for event in events:
            message = event.message
            last[message.tp] = max(last.get(message.tp, -1), message.offset)
        lag = 0
        for tp, offset in last.items():
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - offset - 1)
        metrics.CONSUMER_LAG.labels(topic=kind).set(lag)

    async def handle(kind: str, events: list[faust.EventT]) -> None:
        handle_started = time.perf_counter()
        await catalog_ready.wait()
        by_partition: dict[int, list[RawMessage]] = defaultdict(list)
        controls: dict[int, list[dict]] = defaultdict(list)
        for event in events:
            message = event.message
            headers = dict(message.headers or ())
            if CONTROL_HEADER in headers:
                controls[message.partition].append(orjson.loads(message.value))
                continue
            by_partition[message.partition].append(
                RawMessage(message.key, message.value, message.topic, message.partition, message.offset))
        metrics.BATCH_SIZE.observe(len(events))
        record_lag(kind, events)
        for event in events:
            partition_events[f"{kind}{event.message.partition}"] = event
        finishing = []
        for partition in sorted(by_partition.keys() | controls.keys()):
            scorer, replaced = await scorer_for(kind, partition)
            now = None if settings.mode == "replay" else int(time.time())
            result = scorer.process(by_partition.get(partition, []), now, settings.not_after())
            metrics.EVENTS_IN.labels(topic=kind).inc(result.events)
            watermarks: list[str] = []  # a batch may hold several controls: a replay's and a rebuild's
            catalog_end = 0
            for control in controls.get(partition, []):
                # A watermark closes a replay: first the catalogue published before it must be in.
                catalog_end = max(catalog_end, int(control.get("catalog_end", 0)))
                await catalogue_through(catalog_end)
                if control.get("kind") == "watermark" and settings.mode == "replay":
                    later = scorer.process([], int(control["as_of"]))
                    _merge(result, later)
                    watermarks.append(control.get("token"))
                elif control.get("kind") == "rebuild":
                    # Re-send everything this source knows: the projection is rebuilt from table state.
                    replaced = scorer.all_tallies()
                    result.listings = scorer.all_listings(result.as_of)
                    watermarks.append(control.get("token"))
            finishing.append(await emit(kind, result, replaced, watermarks[-1] if watermarks else None, catalog_end,
                                        tuple(watermarks[:-1])))
        await asyncio.gather(*finishing)
        if events:
            oldest = min(event.message.timestamp for event in events)
            metrics.EVENT_AGE.observe(max(0.0, time.time() - oldest))
            if os.environ.get("CHISO766_TRACE_BATCHES"):
                log.warning("batch %s: %d messages, oldest %.3fs old, handled in %.3fs", kind, len(events),
                            time.time() - oldest, time.perf_counter() - handle_started)

    @app.agent(dossier_topic)
    async def dossiers(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            with heartbeat.batch("dossiers", events):
                await handle("d", events)

    @app.agent(petition_topic)
    async def petitions(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within):
            with heartbeat.batch("petitions", events):
                await handle("p", events)

    @app.agent(tally_topic)
    async def project(stream: faust.StreamT) -> None:
        async for events in stream.take_events(2000, within=settings.batch_within):
            heartbeat.begin("project")
            started = time.perf_counter()
            await catalog_ready.wait()
            if not loaded["projector"]:
                projector.load((key.decode(), orjson.loads(value)) for key, value in tally_table.items())
                loaded["projector"] = True
            touched: set[str] = set()
            tokens: list[tuple[str, str, int]] = []
            before = projector.overall_as_of
            writes: dict[bytes, bytes | None] = {}  # each key once per batch
            for event in events:
                message = orjson.loads(event.message.value)
                periods, changed = projector.apply(message)
                touched |= periods
                writes.update((key.encode(), orjson.dumps(value) if value is not None else None)
                              for key, value in changed.items())
                if message.get("watermark"):
                    tokens.append((message["watermark"], message["source"], int(message["as_of"])))
                    # Another worker's source may have read further into the catalogue than this one.
                    await catalogue_through(int(message.get("catalog_end", 0)))
            deliveries = await tally_writer.write(0, writes, events[-1] if events else None)
            clock_moved = projector.overall_as_of != before
            if tokens or (clock_moved and time.monotonic() - last_full_rescore[0] > FULL_RESCORE_SECONDS):
                touched |= set(projector.periods())
                last_full_rescore[0] = time.monotonic()
            pending_periods.update(touched)
            if tokens or time.monotonic() - last_scoring[0] >= settings.score_every:
                await score_pending()
            for token, source, as_of in tokens:
                await redis.hset(f"{prefix}:replay:{token}", source, as_of)
            if projector.as_of:
                await redis.hset(f"{prefix}:sources", mapping=projector.as_of)
            await delivered(deliveries)
            metrics.PROJECTION_SECONDS.observe(time.perf_counter() - started)
            heartbeat.end("project", events)
            if os.environ.get("CHISO766_TRACE_BATCHES"):
                log.warning("projector: %d messages, %d periods pending, handled in %.3fs", len(events),
                            len(pending_periods), time.perf_counter() - started)

    async def score_pending() -> None:
        """Scoring a period costs milliseconds per unit; coalesce bursts of tally batches."""
        periods = sorted(pending_periods)
        pending_periods.clear()
        last_scoring[0] = time.monotonic()
        for period in periods:
            units, officers = projector.score(period)
            await write_scores(redis, prefix, period, projector.overall_as_of, ruleset, units, officers)

    @app.timer(0.25)
    async def flush_scores() -> None:
        if pending_periods and time.monotonic() - last_scoring[0] >= settings.score_every:
            await score_pending()

    @app.timer(settings.tick_seconds)
    async def tick() -> None:
        await heartbeat.beat()
        if settings.mode != "live" or not catalog_ready.is_set():
            return
        now = int(time.time())
        for source, scorer in list(scorers.items()):
            result = scorer.process([], now)
            if result.tallies or result.alerts or result.listings:
                await (await emit(source[0], result, None, None))

    @app.task
    async def take_commands() -> None:
        await commands.follow(redis, settings)

    @app.task
    async def announce() -> None:
        # The worker's logging setup leaves some libraries at DEBUG; formatting records nobody
        # reads cost a tenth of the hot path.
        for name in ("", "aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(logging.WARNING)
        await heartbeat.beat()

    return app


def _merge(result: BatchResult, later: BatchResult) -> None:
    result.as_of = later.as_of
    seen = {(owner, period): index for index, (owner, period, _) in enumerate(result.tallies)}
    for owner, period, counters in later.tallies:
        if (owner, period) in seen:
            result.tallies[seen[(owner, period)]] = (owner, period, counters)
        else:
            result.tallies.append((owner, period, counters))
    result.state_writes.update(later.state_writes)
    result.alerts += later.alerts
    result.listings += later.listings
