"""Creating a namespace's topics with explicit partition counts (never left to auto-creation)."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import CATALOG_TOPIC, DEAD_LETTER_TOPIC, DOSSIER_TOPIC, PETITION_TOPIC, TALLY_TOPIC, Settings


def planned_topics(settings: Settings) -> dict[str, int]:
    partitions = settings.partitions
    return {settings.topic(DOSSIER_TOPIC): partitions, settings.topic(PETITION_TOPIC): partitions,
            settings.topic(CATALOG_TOPIC): 1, settings.topic(DEAD_LETTER_TOPIC): 1, settings.topic(TALLY_TOPIC): 1}


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create missing topics; returns the partition count each topic really has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        existing = await admin.list_topics()
        missing = [NewTopic(name, count, 1) for name, count in planned_topics(settings).items() if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        # A new topic's partitions show up in metadata a moment after it is created.
        for _ in range(120):
            described = await admin.describe_topics(list(planned_topics(settings)))
            counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
            if all(counts.get(name) for name in planned_topics(settings)):
                return counts
            await asyncio.sleep(0.25)
        raise RuntimeError(f"topics did not become available: {counts}")
    finally:
        await admin.close()
