"""The broker's side of a move: partition counts, offsets, groups, reading topics whole, writing.

Plain aiokafka clients outside every consumer group: reading never commits anything.
"""
from __future__ import annotations

import asyncio
from typing import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .checks import Group


async def partition_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int | None]:
    """Each topic's partition count; None for a topic the broker does not have."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return {t["topic"]: (len(t["partitions"]) if t.get("error_code", 0) == 0 and t["partitions"] else None)
            for t in described}


async def offsets(bootstrap: str, partitions: list[TopicPartition]) -> tuple[dict, dict]:
    """The first and the end offset of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def groups(bootstrap: str, ids: Iterable[str]) -> list[Group]:
    """Each group's members and committed offsets, as the broker has them now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        found = []
        for group_id in ids:
            members = sum(len(g[5]) for response in await admin.describe_consumer_groups([group_id])
                          for g in response.groups)
            committed = {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group_id)).items()}
            found.append(Group(group_id, members, committed))
        return found
    finally:
        await admin.close()


async def latest(bootstrap: str, counts: dict[str, int], poll_ms: int = 500) -> dict[str, dict[bytes, bytes]]:
    """Every topic of ``counts`` (topic -> partitions) read to the end it had when reading began:
    the last value of each key, a tombstone removing it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for topic, n in counts.items() for p in range(n)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[str, dict[bytes, bytes]] = {topic: {} for topic in counts}
        behind = {tp for tp in partitions if ends[tp] > 0}
        while behind:
            for tp, records in (await consumer.getmany(*behind, timeout_ms=poll_ms, max_records=10_000)).items():
                for record in records:
                    if record.offset >= ends[tp] or record.key is None:
                        continue  # written after reading began, or not a keyed record
                    if record.value is None:
                        found[tp.topic].pop(record.key, None)
                    else:
                        found[tp.topic][record.key] = record.value
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()


async def write(bootstrap: str, records: list[tuple[str, int, bytes, bytes]]) -> None:
    """Each (topic, partition, key, value), acknowledged by every in-sync replica, never twice."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key, partition=partition)
                for topic, partition, key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
