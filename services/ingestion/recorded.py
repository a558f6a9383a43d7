"""Waiting for the recorder, which runs in its own process: PostgreSQL LISTEN on its NOTIFY.

The recorder notifies ``incident_recorded`` with an incident id when a batch touching
that incident commits. A waiter registers before it first checks the database, so a
notification that arrives between the check and the wait is not missed; and it checks
again at least every ``RECHECK_SECONDS`` anyway, so a dropped listening connection (a
PostgreSQL restart) makes answers slower, never wrong. The listening connection is
re-opened in the background.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Awaitable, Callable, TypeVar

import asyncpg

from shared.background import essential
from shared.db.records import RECORDED_CHANNEL

log = logging.getLogger("ingestion.recorded")

RECHECK_SECONDS = 0.5
T = TypeVar("T")


class RecordedListener:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        # Without it every command answer waits for the 0.5 s re-check: a listener that died
        # of a bug takes the process down rather than leave it slow behind a green /readyz.
        self._task = essential(self._listen_forever(), "recorded listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn, _pid, _channel, incident_id: str) -> None:
        for event in self._waiters.get(incident_id, ()):
            event.set()

    async def _listen_forever(self) -> None:
        told = False  # an outage is logged once, not once a second
        while True:
            try:
                conn = await asyncpg.connect(self._url, timeout=10)
            except Exception as exc:  # noqa: BLE001 - retried: the database may be restarting
                if not told:
                    log.warning("cannot listen for recorded incidents (%s); commands poll until it can", exc)
                    told = True
                await asyncio.sleep(1.0)  # reconnection back-off
                continue
            if told:
                log.info("listening for recorded incidents again")
                told = False
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _c: closed.set())
            try:
                await conn.add_listener(RECORDED_CHANNEL, self._notified)
                self.listening.set()
                await closed.wait()
                log.warning("the listening connection closed; re-opening it")
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("listening for recorded incidents failed (%s); retrying", exc)
            finally:
                self.listening.clear()
                with suppress(Exception):
                    await conn.close(timeout=2)
            await asyncio.sleep(0.2)  # a short pause before reconnecting

    async def wait_for(self, incident_id: str, check: Callable[[], Awaitable[T | None]], deadline: float) -> T | None:
        """``check()`` until it returns something (re-checked on each notification for the
        incident, and every RECHECK_SECONDS); None when the loop's clock passes ``deadline``."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiters.setdefault(incident_id, set()).add(event)
        try:
            while True:
                event.clear()
                found = await check()
                if found is not None:
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), min(RECHECK_SECONDS, remaining))
        finally:
            waiters = self._waiters.get(incident_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[incident_id]
