"""Deadlines kept as data in a table, and the timer that only nudges.

Faust timers are not durable and cannot write tables: the timer looks for values whose
deadline passed and sends a check keyed like the table, and the agent that owns the key
re-checks and acts (idempotently). A check sent and not yet seen back is not repeated
every tick.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import faust

RECHECK_SECONDS = 5.0


class InFlight:
    """Checks sent and not yet seen back by the agent."""

    def __init__(self, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self._sent: dict[str, float] = {}
        self._recheck = recheck_seconds

    def claim(self, key: str, clock: float) -> bool:
        if clock - self._sent.get(key, -self._recheck) < self._recheck:
            return False
        self._sent[key] = clock
        return True

    def seen(self, key: str) -> None:
        self._sent.pop(key, None)


def deadline_timer(app: faust.App, name: str, interval: float, table: faust.Table,
                   due_of: Callable[[str, Any], datetime | None],
                   send_check: Callable[[str, datetime], Awaitable[Any]]) -> InFlight:
    """Every ``interval`` seconds, ``send_check(key, due)`` for each value of ``table`` that is due."""
    in_flight = InFlight()

    async def nudge() -> None:
        now = datetime.now(timezone.utc)
        clock = time.monotonic()
        for key, value in list(table.items()):
            if not value:
                continue
            due = due_of(key, value)
            if due is None or due > now or not in_flight.claim(key, clock):
                continue
            await send_check(key, due)

    nudge.__name__ = nudge.__qualname__ = name
    nudge.__doc__ = f"Timers cannot write tables: ask the owner of each due {table.name} entry to look again."
    app.timer(interval=interval)(nudge)
    return in_flight
