"""One transaction per batch; a refused row found by replaying the batch row by row; the database waited for.

What is neither an outage nor a refusal (shared/db/unavailable.py) propagates: the loop
ends and the process with it, for the supervisor to restart.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from asyncpg.exceptions import _base

from shared.db.records import Message, write_batch
from shared.db.unavailable import refused, unavailable

log = logging.getLogger("recorder.writer")

FIRST_RETRY, MAX_RETRY = 0.2, 5.0
ACQUIRE_TIMEOUT = 10.0
# Client-side errors in a row (asyncpg's InternalClientError: a connection the server closed
# under a query) after which the server is asked whether it is really away. If a fresh
# connection answers, this is not an outage to wait out: the error is raised, the recorder
# exits and its supervisor restarts it (the batch, never committed, is read again), so a
# client stuck on it is loud, not a green process retrying one batch for ever.
CLIENT_ERRORS_BEFORE_ASKING = 5

Item = tuple[Any, Message]  # (the Kafka record it came from, the parsed message)


class ClientStuck(RuntimeError):
    """asyncpg fails the same way again and again while PostgreSQL answers: not an outage."""


class BatchWriter:
    def __init__(self, pool: asyncpg.Pool, refs_cap: int, dsn: str | None = None) -> None:
        self._pool = pool
        self._refs_cap = refs_cap
        self._dsn = dsn  # for asking the server itself, on a connection outside the pool
        self.outage_since: float | None = None  # monotonic time the database went away, while it is away

    async def write(self, items: list[Item]) -> list[tuple[Any, str]]:
        """Write every item; return the (record, reason) pairs PostgreSQL refused.

        While the database is away (restarting, refusing connections, out of them) the
        same batch is retried with back-off until it is written: nothing is skipped,
        and the writes are idempotent, so a batch half-seen before a crash is harmless.
        """
        delay, client_errors = FIRST_RETRY, 0
        while True:
            try:
                rejected = await self._attempt(items)
            except Exception as exc:  # noqa: BLE001 - sorted just below: retried or raised
                if not unavailable(exc):
                    raise
                client_errors = client_errors + 1 if isinstance(exc, _base.InternalClientError) else 0
                if client_errors >= CLIENT_ERRORS_BEFORE_ASKING:
                    client_errors = 0
                    if await self.server_answers():
                        raise ClientStuck(f"{type(exc).__name__} on {CLIENT_ERRORS_BEFORE_ASKING} attempts in a row "
                                          f"while PostgreSQL answers a new connection: {exc}") from exc
                loop = asyncio.get_running_loop()
                if self.outage_since is None:
                    self.outage_since = loop.time()
                    log.warning("PostgreSQL unavailable (%s: %s); retrying the batch of %d until it is back",
                                type(exc).__name__, exc, len(items))
                await asyncio.sleep(delay)  # back-off between reconnection attempts, not a wait for a condition
                delay = min(delay * 2, MAX_RETRY)
                continue
            if self.outage_since is not None:
                log.info("PostgreSQL is back; batch written")
                self.outage_since = None
            return rejected

    async def server_answers(self) -> bool:
        """Whether PostgreSQL answers a query on a connection of its own (not the pool's)."""
        if self._dsn is None:
            return False  # nobody to ask: keep taking it for an outage
        try:
            conn = await asyncpg.connect(self._dsn, timeout=ACQUIRE_TIMEOUT)
        except Exception:  # noqa: BLE001 - any failure to connect: the server is away
            return False
        try:
            return await conn.fetchval("SELECT 1") == 1
        except Exception:  # noqa: BLE001 - it connected but cannot answer: away all the same
            return False
        finally:
            await conn.close(timeout=ACQUIRE_TIMEOUT)

    async def _attempt(self, items: list[Item]) -> list[tuple[Any, str]]:
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            try:
                async with conn.transaction():
                    await write_batch(conn, [message for _, message in items], self._refs_cap)
                return []
            except Exception as exc:  # noqa: BLE001 - a refusal is located row by row below
                if not refused(exc):
                    raise
                log.warning("batch of %d refused (%s); writing it row by row to find the refused rows",
                            len(items), exc)
            return await self._row_by_row(conn, items)

    async def _row_by_row(self, conn: asyncpg.Connection, items: list[Item]) -> list[tuple[Any, str]]:
        """The batch again in one transaction, each message under its own savepoint: a refused
        message rolls back alone and is reported; the others are written."""
        rejected = []
        async with conn.transaction():
            for record, message in items:
                try:
                    async with conn.transaction():
                        await write_batch(conn, [message], self._refs_cap)
                except Exception as exc:  # noqa: BLE001 - sorted just below: refused, or raised
                    if not refused(exc):
                        raise
                    by = "rejected by PostgreSQL" if isinstance(exc, (asyncpg.PostgresError, ValueError)) else "not recorded"
                    rejected.append((record, f"{by}: {type(exc).__name__}: {exc}"))
        return rejected
