"""Create every catalogue topic with its explicit partition count (never broker auto-creation)."""
from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from ..catalogue import TopicSpec

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], default_partitions: int, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partition_count(default_partitions),
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
                )
                for spec in specs
                if spec.name not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass  # another service created them first
                log.info("created topics: %s", ", ".join(t.name for t in missing))
            return
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)  # broker not reachable yet: retry until the deadline
        finally:
            await admin.close()
