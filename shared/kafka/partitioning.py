"""Which partition a key lands on: the producers' default partitioner (murmur2, as Kafka's
Java clients and aiokafka compute it), so a consumer can tell a message it may handle
where it is from one that must be sent on to its key's partition."""
from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
