"""Changes people make to on-call data: on their compacted topic first, then read back once recorded.

The topic is the record the services act on; PostgreSQL is what the API reads. An answer
waits until the recorder has written this version (read-your-writes, as for commands).
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import BaseModel

from shared.db import oncall as store

from .errors import ApiError
from .runtime import Runtime

_POLL_SECONDS = 0.02


async def publish_and_wait(rt: Runtime, topic: str, kind: store.Kind, item: BaseModel) -> None:
    key = getattr(item, kind.key)
    try:
        await rt.producer.send(topic, key, item)
    except KafkaError:
        raise ApiError(503, "not stored: the broker did not acknowledge it; retry", {"id": key}) from None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rt.settings.command_timeout_seconds
    async with rt.pool.acquire() as conn:
        while (await store.version(conn, kind, key) or 0) < item.version:
            if loop.time() > deadline:
                raise ApiError(503, "stored on the broker and in effect, but not recorded yet; read it again shortly",
                               {"id": key})
            await asyncio.sleep(_POLL_SECONDS)


async def delete(rt: Runtime, topic: str, kind: store.Kind, key: str, actor: str, what: str) -> dict[str, Any]:
    """Mark one deleted (a new version: who and when), unless it is unknown (404) or deleted already (409)."""
    async with rt.pool.acquire() as conn:
        current = await store.item(conn, kind, key)
    if current is None:
        raise ApiError(404, f"no {what} {key}", {kind.key: key})
    if current.deleted_at is not None:
        raise ApiError(409, f"{what} {key} was already deleted", {kind.key: key})
    deleted = current.model_copy(update={"deleted_by": actor, "deleted_at": datetime.now(timezone.utc),
                                         "version": current.version + 1})
    await publish_and_wait(rt, topic, kind, deleted)
    return deleted.model_dump(mode="json")
