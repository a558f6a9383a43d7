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

from ..outage import Outage

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
# Work retrying while a dependency other than the broker (PostgreSQL) is away: an outage,
# not a stall, so no progress is expected meanwhile (see Progress).
DEPENDENCY_WAITS = Stalls()


def verdict(oldest: tuple[str, float] | None, bound: float, broker_answers: bool) -> str | None:
    """Why the process is unhealthy, or None. Pure, so the rule is tested on its own."""
    if oldest is None or oldest[1] <= bound or not broker_answers:
        return None
    what, age = oldest
    return f"{what} has not finished in {age:.0f}s (bound {bound:.0f}s) while the broker accepts connections"


async def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Whether the broker's port is there: False only when every bootstrap server refuses the
    connection (a stopped broker: an outage). A connection not answered within ``timeout`` is
    a broker that is there and hung (paused, or its accept queue full of the connections
    nobody accepts): a stall, which a restart may cure, not an outage to wait out."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), timeout)
        except asyncio.TimeoutError:
            return True
        except (OSError, ValueError):
            continue
        writer.close()
        return True
    return False


@dataclass
class Progress:
    """Whether each agent with messages waiting makes progress: an agent none of whose
    waiting partitions has moved its committed offset within the bound is stalled,
    whatever it waits on (stuck in a handler, its partitions never read again), even if
    nothing above is running. One partition read slowly while others move is not a stall.
    """

    since: dict = field(default_factory=dict)  # agent -> (its committed offsets, monotonic when they last moved)

    def observe(self, lagging: dict, now: float | None = None) -> tuple[str, float] | None:
        """``lagging``: agent -> {partition: (committed, highwater)} for partitions with
        messages waiting. Returns the agent stuck longest, as (description, seconds)."""
        now = time.monotonic() if now is None else now
        worst = None
        for agent in list(self.since):
            if not lagging.get(agent):
                del self.since[agent]
        for agent, partitions in lagging.items():
            if not partitions:
                continue
            committed = {tp: c for tp, (c, _) in partitions.items()}
            seen = self.since.get(agent)
            moved = seen is None or any(seen[0].get(tp) != c for tp, c in committed.items())
            if moved:
                self.since[agent] = (committed, now)
                continue
            age = now - seen[1]
            if worst is None or age > worst[1]:
                waiting = sum(h - c for c, h in partitions.values())
                where = ", ".join(f"{tp.topic}[{tp.partition}]@{c}" for tp, (c, _) in sorted(partitions.items()))
                worst = (f"agent {agent} ({waiting} messages waiting at {where})", age)
        return worst

    def reset(self) -> None:
        self.since.clear()


@dataclass
class Watchdog:
    bootstrap: str
    bound: float
    service: str
    stalls: Stalls = field(default_factory=lambda: STALLS)
    # Partitions with messages waiting and their committed offsets (None: not now, e.g.
    # while rebalancing); see Progress.
    lagging: object = None
    progress: Progress = field(default_factory=Progress)
    unhealthy: str | None = None
    _outage: bool = False
    # The broker's port, looked at on every round: an outage is a line when it starts, one
    # every 10 s while it lasts and one when it ends, whatever the clients log meanwhile.
    broker: Outage | None = None
    # When the broker's port last came back after refusing: work that waited through the
    # outage is timed from then (see _since_broker_back), not from its start.
    broker_back_at: float | None = None

    def __post_init__(self) -> None:
        self.broker = self.broker or Outage(f"Kafka broker (seen from {self.service})")

    async def watch_broker(self) -> None:
        now = time.monotonic()
        if await broker_answers(self.bootstrap):
            line = self.broker.recovered(now, "its port accepts connections again")
            if line:
                self.broker_back_at = now
                log.info(line)
        else:
            self.progress.reset()  # no agent is expected to move meanwhile
            line = self.broker.failed(now, f"{self.bootstrap} refuses connections")
            if line:
                log.warning(line)

    def oldest(self) -> tuple[str, float] | None:
        oldest = self.stalls.oldest()
        lagging = self.lagging() if self.lagging is not None else None
        if lagging is None or DEPENDENCY_WAITS.oldest() is not None:
            self.progress.reset()
            return self._since_broker_back(oldest)
        stuck = self.progress.observe(lagging)
        if stuck is not None:
            stuck = (f"no progress on {stuck[0]}", stuck[1])
        candidates = [c for c in (oldest, stuck) if c is not None]
        return self._since_broker_back(max(candidates, key=lambda c: c[1]) if candidates else None)

    def _since_broker_back(self, found: tuple[str, float] | None) -> tuple[str, float] | None:
        """Work that waited through an outage is timed from the broker's return, after a grace
        of one bound: a broker that has just started accepts connections well before it serves
        (on a loaded machine it loaded its logs and group coordinators for 30 s and more), and
        from outside that looks the same as a hung one."""
        if found is None or self.broker_back_at is None:
            return found
        return found[0], min(found[1], max(0.0, time.monotonic() - self.broker_back_at - self.bound))

    async def check(self) -> str | None:
        oldest = self.oldest()
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
            await self.watch_broker()
            reason = await self.check()
            if reason is not None:
                self.unhealthy = reason
                log.error("%s unhealthy: %s; exiting so that it is restarted", self.service, reason)
                logging.shutdown()
                # A stalled Faust worker cannot shut down cleanly (the stall is in its shutdown
                # path too): leave at once; offsets not committed are read again.
                os._exit(UNHEALTHY)
