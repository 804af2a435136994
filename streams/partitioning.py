"""Where events go: Kafka's default partitioner (murmur2 of the key bytes), so producers, tables and
replay agree, and events gathered into JSON-array messages, one array per topic partition."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2


def partition_for(key: str | bytes, partitions: int) -> int:
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions


@dataclass
class Outgoing:
    """One message to send: `topic` is the topic's name without the namespace."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes


class ArrayGrouper:
    """Encoded events gathered per topic partition; each array is keyed by its first entity."""

    def __init__(self, partitions: int, limit: int | None = None):
        self.partitions, self.limit = partitions, limit
        self.pending: dict[tuple[str, int], list[tuple[str, bytes]]] = {}

    def add(self, topic: str, key: str, body: bytes, partition: int | None = None) -> Outgoing | None:
        """Gather one event (in its key's partition unless given); returns the array it filled."""
        partition = partition_for(key, self.partitions) if partition is None else partition
        group = self.pending.setdefault((topic, partition), [])
        group.append((key, body))
        return self._array(topic, partition) if self.limit and len(group) >= self.limit else None

    def drain(self) -> list[Outgoing]:
        """Every partly filled array, in the order they were started."""
        return [self._array(topic, partition) for topic, partition in list(self.pending)]

    def _array(self, topic: str, partition: int) -> Outgoing:
        group = self.pending.pop((topic, partition))
        return Outgoing(topic, partition, group[0][0].encode(), b"[" + b",".join(body for _, body in group) + b"]")
