"""Incident ids ``INC-YYYY-MM-DD-NNN``: unique and increasing per day across every worker."""
from __future__ import annotations

from datetime import date

import asyncpg

from ..domain.ids import format_incident_id


async def allocate_incident_id(pool: asyncpg.Pool, opening_key: str, day: date) -> str:
    """The id for this opening; asking again with the same key returns the same id."""
    for _ in range(3):
        try:
            return await _allocate(pool, opening_key, day)
        except asyncpg.UniqueViolationError:
            continue  # a concurrent allocation for the same opening won: read its id
    return await _allocate(pool, opening_key, day)


async def _allocate(pool: asyncpg.Pool, opening_key: str, day: date) -> str:
    async with pool.acquire() as conn:
        async with conn.transaction():
            existing = await conn.fetchval(
                "SELECT incident_id FROM incident_id_allocations WHERE opening_key = $1", opening_key
            )
            if existing is not None:
                return existing
            number = await conn.fetchval(
                "INSERT INTO incident_id_counters (day, last_value) VALUES ($1, 1) "
                "ON CONFLICT (day) DO UPDATE SET last_value = incident_id_counters.last_value + 1 "
                "RETURNING last_value",
                day,
            )
            incident_id = format_incident_id(day, number)
            await conn.execute(
                "INSERT INTO incident_id_allocations (opening_key, incident_id) VALUES ($1, $2)",
                opening_key,
                incident_id,
            )
            return incident_id


MOVED_PREFIX = "moved-"


async def set_aside_openings(conn: asyncpg.Connection, moved_at: str) -> int:
    """Rename every opening key allocated so far to ``moved-<moved_at>:<key>``; how many.

    An opening key is made of the opening alert's position. On a new cluster positions start
    at 0 again, and the same key would hand a new incident an old incident's id. Keys set
    aside by an earlier move are left as they are.
    """
    status = await conn.execute(
        "UPDATE incident_id_allocations SET opening_key = $1 || opening_key WHERE opening_key NOT LIKE $2",
        f"{MOVED_PREFIX}{moved_at}:", f"{MOVED_PREFIX}%",
    )
    return int(status.split()[-1])
