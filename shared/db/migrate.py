"""Apply the SQL migrations in order, once, under an advisory lock (services start together)."""
from __future__ import annotations

import logging
from pathlib import Path

import asyncpg

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 7_351_002  # any constant shared by every service

log = logging.getLogger(__name__)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
            log.info("applied migration %s", path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied


async def migrate_url(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    import asyncio

    from shared.settings import load_settings

    logging.basicConfig(level=logging.INFO)
    names = asyncio.run(migrate_url(load_settings().database_url))
    print(f"migrations applied: {', '.join(names) or 'none (up to date)'}")
