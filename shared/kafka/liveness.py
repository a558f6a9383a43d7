"""Liveness: a stall behind a process that looks alive is turned into an exit.

Work that waits on the broker (an offset commit, a producer flush, the wait for
in-flight messages before a rebalance) registers itself while it runs. A watchdog
looks at the oldest one: when it has not finished within the bound while the
broker's port still answers, the process reports unhealthy and exits with
``UNHEALTHY`` so that its supervisor (make up, make run, the test harness, a
container orchestrator) starts it afresh. A broker that refuses connections is an
outage, not a stall: then the process waits, logging the change of state once.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("liveness")

UNHEALTHY = 75  # EX_TEMPFAIL: restart me
CONFIG_ERROR = 78  # EX_CONFIG: do not restart, the configuration is wrong


@dataclass
class Stalls:
    """What is waiting on the broker right now, and since when (monotonic seconds)."""

    running: dict[int, tuple[str, float]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)

    @contextmanager
    def watch(self, what: str):
        token = next(self._ids)
        self.running[token] = (what, time.monotonic())
        try:
            yield
        finally:
            self.running.pop(token, None)

    def oldest(self, now: float | None = None) -> tuple[str, float] | None:
        """The longest-running piece of work and how long it has run."""
        if not self.running:
            return None
        what, since = min(self.running.values(), key=lambda item: item[1])
        return what, (now if now is not None else time.monotonic()) - since


STALLS = Stalls()


def verdict(oldest: tuple[str, float] | None, bound: float, broker_answers: bool) -> str | None:
    """Why the process is unhealthy, or None. Pure, so the rule is tested on its own."""
    if oldest is None or oldest[1] <= bound or not broker_answers:
        return None
    what, age = oldest
    return f"{what} has not finished in {age:.0f}s (bound {bound:.0f}s) while the broker accepts connections"


async def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection (a refusing broker is an outage)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), timeout)
        except (OSError, asyncio.TimeoutError, ValueError):
            continue
        writer.close()
        return True
    return False


@dataclass
class Watchdog:
    bootstrap: str
    bound: float
    service: str
    stalls: Stalls = field(default_factory=lambda: STALLS)
    unhealthy: str | None = None
    _outage: bool = False

    async def check(self) -> str | None:
        oldest = self.stalls.oldest()
        if oldest is None or oldest[1] <= self.bound:
            return None
        answers = await broker_answers(self.bootstrap)
        if not answers and not self._outage:
            log.warning("%s: %s waiting for %.0fs; the broker refuses connections: waiting for it", self.service,
                        oldest[0], oldest[1])
        self._outage = not answers
        return verdict(oldest, self.bound, answers)

    async def run(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)  # a periodic check, not a wait for a condition
            reason = await self.check()
            if reason is not None:
                self.unhealthy = reason
                log.error("%s unhealthy: %s; exiting so that it is restarted", self.service, reason)
                logging.shutdown()
                # A stalled Faust worker cannot shut down cleanly (the stall is in its shutdown
                # path too): leave at once; offsets not committed are read again.
                os._exit(UNHEALTHY)
