"""What a fault test reads back: a topic from where it stood before the test (not from the
beginning of a suite's worth of alerts), and what each service logged in a span of time."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition


def end_offsets(topic: str) -> dict[int, int]:
    async def run() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(run())


def read_from(topic: str, offsets: dict[int, int]) -> list[dict]:
    """Every JSON message on ``topic`` from ``offsets`` (partition -> offset) to its end now."""
    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(offsets)]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, offsets[tp.partition])
            end = await consumer.end_offsets(partitions)
            found: list[dict] = []
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(json.loads(record.value) for record in records)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def log_sizes(paths: dict[str, Path]) -> dict[str, int]:
    return {name: path.stat().st_size if path.exists() else 0 for name, path in paths.items()}


def log_text(path: Path, start: int, end: int | None = None) -> str:
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read() if end is None else handle.read(max(0, end - start))
    return data.decode(errors="replace")
