"""Changes people make to on-call data: on their compacted topic first, then read back once recorded.

The topic is the record the services act on; PostgreSQL is what the API reads. An answer
waits until the recorder has written this version (read-your-writes, as for commands).
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import asyncpg
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from .errors import ApiError
from .runtime import Runtime

_POLL_SECONDS = 0.02


async def publish_and_wait(rt: Runtime, topic: str, key: str, message: BaseModel, version: int,
                           recorded_version: Callable[[asyncpg.Connection], Awaitable[int | None]]) -> None:
    try:
        await rt.producer.send(topic, key, message)
    except KafkaError:
        raise ApiError(503, "not stored: the broker did not acknowledge it; retry", {"id": key}) from None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.command_timeout_seconds
    async with rt.pool.acquire() as conn:
        while (await recorded_version(conn) or 0) < version:
            if loop.time() > deadline:
                raise ApiError(503, "stored on the broker and in effect, but not recorded yet; read it again shortly",
                               {"id": key})
            await asyncio.sleep(_POLL_SECONDS)
