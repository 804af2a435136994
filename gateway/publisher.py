"""Translated events into the namespace's topics, acknowledged only once Kafka has them.

An idempotent producer with acks=all. Events go as JSON arrays, one per topic partition (the
workers' cost is per message), each partition picked by Kafka's default partitioner on the event's
entity key, as `replay` does, so a dossier's events stay in its partition. Dead letters carry the
record with its personal data already removed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from contracts.topics import CATALOG_TOPIC, DEAD_LETTER_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, TOPIC_OF_ENTITY
from ingest.calls import RecordRejection
from schemas import events as ev

ARRAY_EVENTS = 500


class KafkaUnavailable(RuntimeError):
    pass


class Publisher:
    def __init__(self, bootstrap: str, namespace: str, partitions: int = 4, timeout: float = 10.0):
        self.bootstrap, self.namespace, self.partitions, self.timeout = bootstrap, namespace, partitions, timeout
        self.producer: AIOKafkaProducer | None = None
        self.counts: dict[str, int] = {}

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    async def start(self) -> None:
        """Topics ensured, the producer connected and the partition counts read; on any failure
        nothing is left open (a later call tries again from the start)."""
        await self._ensure_topics()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                                    linger_ms=2, max_request_size=16 * 1024 * 1024,
                                    request_timeout_ms=int(self.timeout * 1000))
        try:
            await producer.start()
            for name in (DOSSIER_TOPIC, PETITION_TOPIC, CATALOG_TOPIC):
                found = await producer.partitions_for(self.topic(name))
                self.counts[name] = len(found)
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def _ensure_topics(self) -> None:
        """The workers' topics, created as they create them when the gateway starts first."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            brokers = len((await admin.describe_cluster())["brokers"])
            replication = min(3, max(1, brokers))
            config = {"min.insync.replicas": "2"} if replication >= 3 else {}
            plan = {DOSSIER_TOPIC: self.partitions, PETITION_TOPIC: self.partitions, CATALOG_TOPIC: 1,
                    DEAD_LETTER_TOPIC: 1}
            missing = [NewTopic(self.topic(name), count, replication, topic_configs=config)
                       for name, count in plan.items() if self.topic(name) not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
        finally:
            await admin.close()

    def messages(self, events: Iterable[tuple[ev.EventBase, bytes]]) -> list[tuple[str, int, bytes, bytes]]:
        groups: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        for event, body in events:
            name = TOPIC_OF_ENTITY[ev.entity_kind(event)]
            key = ev.entity_key(event)
            partition = (murmur2(key.encode()) & 0x7FFFFFFF) % self.counts[name]
            groups.setdefault((name, partition), []).append((key, body))
        out = []
        for (name, partition), group in groups.items():
            for start in range(0, len(group), ARRAY_EVENTS):
                chunk = group[start:start + ARRAY_EVENTS]
                out.append((self.topic(name), partition, chunk[0][0].encode(),
                            b"[" + b",".join(body for _, body in chunk) + b"]"))
        return out

    async def publish(self, events: list[tuple[ev.EventBase, bytes]], rejections: list[RecordRejection],
                      service: str) -> None:
        """Every message delivered (acks=all) before this returns; KafkaUnavailable otherwise."""
        if self.producer is None:
            raise KafkaUnavailable("the gateway's producer is not started")
        producer = self.producer
        try:
            async with asyncio.timeout(self.timeout):
                deliveries = [await producer.send(topic, value, key=key, partition=partition)
                              for topic, partition, key, value in self.messages(events)]
                for rejection in rejections:
                    letter = {"reason": rejection.reason, "detail": rejection.detail, "path": None,
                              "topic": f"gateway:{service}", "partition": -1, "offset": -1,
                              "index": rejection.index, "MaHoSo": rejection.dossier_code,
                              "at": int(time.time()), "raw": orjson.dumps(rejection.record).decode()}
                    deliveries.append(await producer.send(self.topic(DEAD_LETTER_TOPIC), orjson.dumps(letter)))
                await asyncio.gather(*deliveries)
        except (TimeoutError, KafkaError) as error:
            raise KafkaUnavailable(f"Kafka did not take the records: {type(error).__name__}") from error
