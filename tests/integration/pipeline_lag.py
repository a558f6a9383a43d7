"""How far the platform's consumers are behind: a test that floods the pipeline waits for
this to reach zero, so that the tests after it do not queue behind its backlog."""
from __future__ import annotations

import asyncio
import os

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient


async def _lag(prefix: str) -> dict[str, int]:
    bootstrap = os.environ["KAFKA_BOOTSTRAP"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        behind = {}
        for group, _ in await admin.list_consumer_groups():
            if not group.startswith(prefix):
                continue
            committed = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(committed))
            behind[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
        return behind
    finally:
        await consumer.stop()
        await admin.close()


def consumer_lag(prefix: str | None = None) -> dict[str, int]:
    """Messages not yet committed, per consumer group of this platform (APP_PREFIX)."""
    return asyncio.run(_lag(prefix or os.environ.get("APP_PREFIX", "incident-test")))
