"""Writing a batch's table keys at once: into the table's store, and into its changelog as record
batches instead of one Kafka message per key.

A Faust table write (`table[key] = value`) sends its changelog record through Faust's per-message
path: a future, a pending message, the producer buffer, a partitioner call and a delivery
callback — about a fifth of a busy worker's time when every event touches a dossier. Here the
store gets the values directly and the changelog gets the same records (same topic, partition,
key and value bytes, so Faust's recovery reads them as its own) in batches of up to a megabyte.

Delivery is awaited before the batch's events are acknowledged: an offset commit can then never
cover state that did not reach the changelog (a failed delivery raises, and the worker stops
before committing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import faust
from aiokafka import TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder

from streams import metrics
from streams.faust_fixes import acting_for, aiokafka_producer

RECORD_BATCH_BYTES = 1024 * 1024  # the broker's default message.max.bytes is just above this


class TableWriter:
    def __init__(self, app: faust.App, table: faust.Table, metric_label: str):
        self.app, self.table, self.metric_label = app, table, metric_label

    @property
    def topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    async def write(self, partition: int, items: Mapping[bytes, bytes | None],
                    event: faust.EventT | None) -> list[asyncio.Future]:
        """Store `items` (None deletes) on behalf of `event`, one of the batch's events of
        `partition`, and queue their changelog records; returns the delivery futures."""
        with acting_for(event):
            self.store(items)
        metrics.TABLE_WRITES.labels(table=self.metric_label).inc(len(items))
        return await self.send(partition, items)

    def store(self, items: Mapping[bytes, bytes | None]) -> None:
        """Put the values in the table's store (the current event must be set for RocksDB)."""
        data = self.table.data
        for key, value in items.items():
            if value is None:
                if key in data:
                    del data[key]
            else:
                data[key] = value

    async def send(self, partition: int, items: Mapping[bytes, bytes | None]) -> list[asyncio.Future]:
        """Queue the changelog records of `items` for `partition`; returns their delivery futures."""
        if not items:
            return []
        # The aiokafka producer under Faust's, the one Faust flushes before commits.
        producer = aiokafka_producer(self.app)
        topic = self.topic
        deliveries = []
        builder = _new_builder()
        for key, value in items.items():
            if builder.append(timestamp=None, key=key, value=value) is None:
                deliveries.append(await self._send_batch(producer, builder, topic, partition))
                builder = _new_builder()
                builder.append(timestamp=None, key=key, value=value)
        deliveries.append(await self._send_batch(producer, builder, topic, partition))
        return deliveries

    async def _send_batch(self, producer, builder: BatchBuilder, topic: str, partition: int) -> asyncio.Future:
        count = builder.record_count()
        delivery = await producer.send_batch(builder, topic, partition=partition)
        tp = TopicPartition(topic, partition)

        def delivered(future: asyncio.Future) -> None:
            if not future.cancelled() and future.exception() is None:
                # What Faust's own changelog callback does: RocksDB then knows, after a restart,
                # which changelog offsets its files already hold.
                self.table.data.set_persisted_offset(tp, future.result().offset + count - 1)

        delivery.add_done_callback(delivered)
        return delivery


def _new_builder() -> BatchBuilder:
    return BatchBuilder(RECORD_BATCH_BYTES, 0, key_serializer=None, value_serializer=None)


async def delivered(deliveries: list[asyncio.Future]) -> None:
    """Until every record batch is on the broker; raises the first delivery error."""
    if deliveries:
        await asyncio.gather(*deliveries)
