"""People's requests become commands on incident.commands; the answer waits until applied.

The recorder (its own process) writes triage's verdict and the new incident version to
PostgreSQL and notifies; the wait is ``RecordedListener.wait_for`` (recorded.py).
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import asyncpg

from shared import catalogue as cat
from shared.db import queries
from shared.db.unavailable import unavailable
from shared.kafka.json_producer import JsonProducer
from shared.messages import CommandEnvelope

from .errors import ApiError
from .recorded import RecordedListener


class CommandPending(Exception):
    """The command is on incident.commands, but its verdict cannot be read: PostgreSQL is away.

    Triage applies it without the database; the recorder writes the result once it is back.
    """

    def __init__(self, command_id: str) -> None:
        super().__init__(command_id)
        self.command_id = command_id


async def execute(
    pool: asyncpg.Pool,
    producer: JsonProducer,
    recorded: RecordedListener,
    incident_id: str,
    command,
    actor: str,
    timeout: float,
    unrestricted_only: bool = False,
) -> int:
    """Publish the command, wait for triage's verdict and the recorder; return the new version.

    ``unrestricted_only``: the incident's visibility could not be checked (the database is
    away) and the actor may not see restricted incidents, so triage checks it instead.
    """
    envelope = CommandEnvelope(
        command_id=str(uuid.uuid4()),
        incident_id=incident_id,
        actor=actor,
        issued_at=datetime.now(timezone.utc),
        unrestricted_only=unrestricted_only,
        command=command,
    )
    await producer.send(cat.INCIDENT_COMMANDS.name, incident_id, envelope)
    try:
        return await _answer(pool, recorded, envelope, timeout)
    except Exception as exc:  # noqa: BLE001 - sorted just below: the database away, or raised
        if not unavailable(exc):
            raise
        raise CommandPending(envelope.command_id) from None


async def _answer(pool: asyncpg.Pool, recorded: RecordedListener, envelope: CommandEnvelope, timeout: float) -> int:
    incident_id, command = envelope.incident_id, envelope.command
    deadline = asyncio.get_running_loop().time() + timeout
    async with pool.acquire() as conn:
        async def verdict():
            return await queries.command_result(conn, envelope.command_id)

        result = await recorded.wait_for(incident_id, verdict, deadline)
        if result is None:
            raise ApiError(503, "the command was accepted but not yet applied; retry the read shortly",
                           {"command_id": envelope.command_id})
        if result["outcome"] == "rejected":
            raise ApiError(409, result["reason"], {"incident_id": incident_id, "command": command.kind})
        if result["outcome"] == "not_found":
            raise ApiError(404, result["reason"] or "no such incident", {"incident_id": incident_id})
        version = result["version"] or 0

        # Read-your-writes: the events are applied; wait until the recorder has them too.
        async def written():
            return True if (await queries.incident_version(conn, incident_id) or 0) >= version else None

        if await recorded.wait_for(incident_id, written, deadline) is None:
            raise ApiError(503, "applied, but the record is not written yet; retry the read shortly",
                           {"command_id": envelope.command_id})
        return version
