"""Creating a namespace's topics with explicit partition counts (never left to auto-creation)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, RequestTimedOutError, TopicAlreadyExistsError

from streams.config import CATALOG_TOPIC, DEAD_LETTER_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, TALLY_TOPIC, Settings

T = TypeVar("T")
ADMIN_ATTEMPTS = 15


async def answered(call: Callable[[], Awaitable[T]], attempts: int = ADMIN_ATTEMPTS) -> T:
    """An admin request, tried again when the node it went to does not answer. aiokafka's admin
    client sends each request to one broker picked at random from its metadata, which still lists a
    broker that has just died: with one of three brokers down, a third of the requests failed at once
    (`replay` and worker start-up with NodeNotReadyError). About 20 s in all, time enough for the
    cluster to drop the dead broker from its metadata."""
    for attempt in range(attempts):
        try:
            return await call()
        except (NodeNotReadyError, KafkaConnectionError, RequestTimedOutError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt))
    raise AssertionError("unreachable")


def replication_for(brokers: int) -> int:
    """Copies of each topic on a cluster of `brokers`: 3 once there are 3 (with min.insync.replicas
    2, so one broker may be down while writes go on), else every broker (1 on a single node)."""
    return min(3, max(1, brokers))


def topic_config(replication: int) -> dict[str, str]:
    return {"min.insync.replicas": "2"} if replication >= 3 else {}


async def cluster_replication(admin: AIOKafkaAdminClient) -> int:
    return replication_for(len((await answered(admin.describe_cluster))["brokers"]))


async def settings_replication(settings: Settings) -> int:
    """The replication a worker gives the topics it creates (its tables' changelogs)."""
    if settings.replication is not None:
        return settings.replication
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        return await cluster_replication(admin)
    finally:
        await admin.close()


def planned_configs(settings: Settings, replication: int) -> dict[str, dict[str, str]]:
    """Each topic's own settings: the dead letters' retention comes from the settings."""
    configs = {name: topic_config(replication) for name in planned_topics(settings)}
    configs[settings.topic(DEAD_LETTER_TOPIC)]["retention.ms"] = str(settings.dead_letter_retention_ms)
    return configs


async def _apply_dead_letter_retention(admin: AIOKafkaAdminClient, settings: Settings, replication: int) -> None:
    """An existing dead-letter topic gets the retention in force now (a changed setting applies at the
    next start). AlterConfigs replaces the topic's whole set, so the set sent is all of ours."""
    name = settings.topic(DEAD_LETTER_TOPIC)
    wanted = planned_configs(settings, replication)[name]
    answers = await answered(lambda: admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                                             dict.fromkeys(wanted))]))
    current = {entry[0]: entry[1] for answer in answers for resource in answer.resources
               for entry in resource[4]}
    if all(current.get(key) == value for key, value in wanted.items()):
        return
    await answered(lambda: admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, wanted)]))


def planned_topics(settings: Settings) -> dict[str, int]:
    partitions = settings.partitions
    return {settings.topic(DOSSIER_TOPIC): partitions, settings.topic(PETITION_TOPIC): partitions,
            settings.topic(CATALOG_TOPIC): 1, settings.topic(DEAD_LETTER_TOPIC): 1, settings.topic(TALLY_TOPIC): 1}


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create missing topics; returns the partition count each topic really has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = await answered(admin.list_topics)
        replication = settings.replication or await cluster_replication(admin)
        configs = planned_configs(settings, replication)
        missing = [NewTopic(name, count, replication, topic_configs=configs[name])
                   for name, count in planned_topics(settings).items() if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await answered(lambda: admin.create_topics(missing))
        if settings.topic(DEAD_LETTER_TOPIC) in existing:
            await _apply_dead_letter_retention(admin, settings, replication)
        # A new topic's partitions show up in metadata a moment after it is created.
        for _ in range(120):
            described = await answered(lambda: admin.describe_topics(list(planned_topics(settings))))
            counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
            if all(counts.get(name) for name in planned_topics(settings)):
                return counts
            await asyncio.sleep(0.25)
        raise RuntimeError(f"topics did not become available: {counts}")
    finally:
        await admin.close()
