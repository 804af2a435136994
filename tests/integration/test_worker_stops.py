"""A worker that keeps running and stops when told (issue 10, point 7), on the real stack.

The stall a first worker on a fresh broker could fall into comes down to one aiokafka behaviour,
queued here against the real broker with and without the fix (`streams/faust_fixes.py`); the
worker-level cases — SIGTERM / SIGINT in every state, Redis going away, the heartbeat saying whether
the worker advances — are in `tests/integration/test_faults.py` and below.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streams import faust_fixes

pytestmark = pytest.mark.integration


async def queue_behind_a_narrowing_refresh(bootstrap: str, fixed: bool) -> object:
    """What Faust's producer went through on a fresh broker: it learns every topic from an
    all-topics refresh (Faust forces one after creating a changelog topic), queues a batch for one
    of them, and then sends to a topic created after that refresh. Returns the batch's delivery
    (its record metadata) or the error it failed with."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    queued, later = f"stall-a-{uuid.uuid4().hex[:8]}", f"stall-b-{uuid.uuid4().hex[:8]}"
    # Short expiry so that the unfixed case ends (Faust's producer waits 20 minutes); a linger so
    # the batch is still queued when the narrowing refresh lands.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2000, request_timeout_ms=6000)
    if fixed:
        faust_fixes.track_every_topic_sent_to(producer.client)  # what the worker's transport does
    try:
        await admin.create_topics([NewTopic(queued, 1, 1)])
        await producer.start()
        while not producer.client.cluster.partitions_for_topic(queued):
            await producer.client.force_metadata_update()  # nothing tracked yet: every topic
            await asyncio.sleep(0.1)
        await admin.create_topics([NewTopic(later, 1, 1)])
        batch = producer.create_batch()
        batch.append(key=b"k", value=b"v", timestamp=None)
        delivery = await producer.send_batch(batch, queued, partition=0)
        await producer.send(later, b"x")  # a topic the cache lacks: from now on refreshes ask for it alone
        try:
            return await delivery
        except KafkaError as error:
            return error
    finally:
        await producer.stop()
        await admin.delete_topics([queued, later])
        await admin.close()


def test_without_the_fix_a_queued_batch_loses_its_leader_for_good(local_stack):
    outcome = asyncio.run(queue_behind_a_narrowing_refresh(local_stack.bootstrap, fixed=False))
    # Expired without ever finding a leader: the stall, cut short by the 6 s request timeout.
    assert isinstance(outcome, KafkaError), outcome


def test_with_the_fix_the_queued_batch_is_delivered(local_stack):
    outcome = asyncio.run(queue_behind_a_narrowing_refresh(local_stack.bootstrap, fixed=True))
    assert not isinstance(outcome, Exception), outcome
    assert outcome.offset == 0
