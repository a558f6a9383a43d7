"""People's requests become commands on incident.commands; the answer waits until applied."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import asyncpg

from shared import catalogue as cat
from shared.db import queries
from shared.kafka.json_producer import JsonProducer
from shared.messages import CommandEnvelope

from .errors import ApiError

_POLL_SECONDS = 0.02


async def execute(
    pool: asyncpg.Pool,
    producer: JsonProducer,
    incident_id: str,
    command,
    actor: str,
    timeout: float,
) -> int:
    """Publish the command, wait for triage's verdict and the recorder; return the new version."""
    envelope = CommandEnvelope(
        command_id=str(uuid.uuid4()),
        incident_id=incident_id,
        actor=actor,
        issued_at=datetime.now(timezone.utc),
        command=command,
    )
    await producer.send(cat.INCIDENT_COMMANDS.name, incident_id, envelope)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with pool.acquire() as conn:
        while True:
            result = await queries.command_result(conn, envelope.command_id)
            if result is not None:
                break
            if loop.time() > deadline:
                raise ApiError(503, "the command was accepted but not yet applied; retry the read shortly",
                               {"command_id": envelope.command_id})
            await asyncio.sleep(_POLL_SECONDS)
        if result["outcome"] == "rejected":
            raise ApiError(409, result["reason"], {"incident_id": incident_id, "command": command.kind})
        if result["outcome"] == "not_found":
            raise ApiError(404, result["reason"] or "no such incident", {"incident_id": incident_id})
        version = result["version"] or 0
        # Read-your-writes: the events are applied; wait until the recorder has them too.
        while (await queries.incident_version(conn, incident_id) or 0) < version:
            if loop.time() > deadline:
                raise ApiError(503, "applied, but the record is not written yet; retry the read shortly",
                               {"command_id": envelope.command_id})
            await asyncio.sleep(_POLL_SECONDS)
        return version
