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


# Seconds an agent must have spent waiting for messages, while one of its partitions had
# messages waiting and did not move, before that partition counts as stuck: an agent that
# waits for work it is not given is not slow, it is not being fed (a rewind that brought
# nothing back, a partition the fetch loop no longer reads). A busy agent never qualifies.
IDLE_EVIDENCE = 5.0


@dataclass
class AgentActivity:
    """Per agent, the seconds it has spent waiting for messages (between batches), and of
    those the seconds it was starved: waiting while the fetch loop was held back.

    Faust hands every agent of a process its messages from one fetch loop. That loop waits
    when it cannot deliver: on a full queue of one agent (busy with a storm), or on a full
    producer buffer (``hold``). Meanwhile every other agent waits for messages it is not
    given, with its partitions' messages on the broker: the very shape of a stall, but one
    that ends by itself. Seen on a fresh-clone make test on a loaded machine: triage's watchdog
    took a busy triage for a stalled one and restarted it every minute through the
    20,000-alert storm (1,179 alerts recorded in 300 s); this was one of the ways it did.
    Starved seconds are no evidence of a stall (Progress)."""

    idle_total: dict = field(default_factory=dict)
    idle_since: dict = field(default_factory=dict)
    starved_total: dict = field(default_factory=dict)
    starved_since: dict = field(default_factory=dict)
    holding: int = 0

    def waiting(self, agent: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.idle_since.setdefault(agent, now)
        if self.holding:
            self.starved_since.setdefault(agent, now)

    def working(self, agent: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        since = self.idle_since.pop(agent, None)
        if since is not None:
            self.idle_total[agent] = self.idle_total.get(agent, 0.0) + (now - since)
        self._end_starving(agent, now)

    def held(self, now: float | None = None) -> None:
        """The fetch loop cannot deliver (until ``released``): every waiting agent is starved."""
        now = time.monotonic() if now is None else now
        self.holding += 1
        if self.holding == 1:
            for agent in self.idle_since:
                self.starved_since.setdefault(agent, now)

    def released(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.holding = max(0, self.holding - 1)
        if not self.holding:
            for agent in list(self.starved_since):
                self._end_starving(agent, now)

    @contextmanager
    def hold(self):
        self.held()
        try:
            yield
        finally:
            self.released()

    def _end_starving(self, agent: str, now: float) -> None:
        since = self.starved_since.pop(agent, None)
        if since is not None:
            self.starved_total[agent] = self.starved_total.get(agent, 0.0) + (now - since)

    def idle_seconds(self, now: float | None = None) -> dict[str, float]:
        """Each agent's idle seconds so far, its current wait included."""
        return self._so_far(self.idle_total, self.idle_since, now)

    def starved_seconds(self, now: float | None = None) -> dict[str, float]:
        """Of those, each agent's seconds waiting while the fetch loop was held back."""
        return self._so_far(self.starved_total, self.starved_since, now)

    @staticmethod
    def _so_far(totals: dict, open_since: dict, now: float | None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        result = dict(totals)
        for agent, since in open_since.items():
            result[agent] = result.get(agent, 0.0) + max(0.0, now - since)
        return result


ACTIVITY = AgentActivity()


def lagging_partitions(assignment, agents: dict, position_of, highwater_of) -> dict:
    """Per agent, its assigned partitions with messages waiting: {tp: (position, highwater)}.

    ``position_of`` gives the next offset the agent will take (faust_fixes.taken: what it has
    taken, else the commit). A partition with no position counts from its start, where it is read (faust_fixes,
    correction 4): left out, a partition a worker killed before its first commit left
    behind was outside every rule, and was seen to stall a restarted triage for good
    (59 alerts of 1,000 never forwarded, no rewind, no exit)."""
    found: dict = {}
    for tp in assignment:
        for agent, topics in agents.items():
            if tp.topic not in topics:
                continue
            position, highwater = position_of(tp), highwater_of(tp)
            position = 0 if position is None else position
            if highwater is not None and highwater > position:
                found.setdefault(agent, {})[tp] = (position, highwater)
    return found


@dataclass
class Progress:
    """Whether each agent with messages waiting makes progress.

    Progress is the offsets an agent takes (``lagging_partitions``), not its commits, which
    trail them by seconds under load; a commit that hangs is a stall of its own (Stalls).

    - An agent none of whose waiting partitions has moved its position within the
      bound is stalled, whatever it waits on (stuck in a handler, its partitions never read
      again), even if nothing above is running. One partition read slowly while others
      move is not a stall, as long as the agent is busy.
    - A partition with messages waiting whose position has not moved while its
      agent spent ``IDLE_EVIDENCE`` seconds or more waiting for messages is stuck: the
      agent had time for it, and its messages did not come.
    - Seconds an agent was starved (waiting while the fetch loop was held back, see
      AgentActivity) count for neither rule: its messages could not come. An agent busy in
      a handler is never starved, so a handler that hangs is still a stall.
    """

    # agent -> (its positions, monotonic when they last moved, its starved seconds then)
    since: dict = field(default_factory=dict)
    # (agent, partition) -> (position, monotonic when it last moved, the agent's idle and starved seconds then)
    partitions: dict = field(default_factory=dict)
    stuck: list = field(default_factory=list)  # the stuck partitions of the last observation: (agent, tp, position, age)

    def observe(self, lagging: dict, now: float | None = None, idle: dict | None = None,
                starved: dict | None = None, partition_grace: float = 0.0) -> tuple[str, float] | None:
        """``lagging``: agent -> {partition: (position, highwater)} for partitions with
        messages waiting; ``idle`` and ``starved``: agent -> idle and starved seconds so far
        (AgentActivity). Returns the agent or partition stuck longest, as (description, seconds);
        a stuck partition's seconds less ``partition_grace`` (see Watchdog.partition_bounds)."""
        now = time.monotonic() if now is None else now
        starved = starved or {}
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
                self.since[agent] = (committed, now, starved.get(agent, 0.0))
                continue
            age = now - seen[1] - (starved.get(agent, 0.0) - seen[2])
            if worst is None or age > worst[1]:
                waiting = sum(h - c for c, h in partitions.values())
                where = ", ".join(f"{tp.topic}[{tp.partition}]@{c}" for tp, (c, _) in sorted(partitions.items()))
                worst = (f"agent {agent} ({waiting} messages waiting at {where})", age)
        stuck = self._stuck_partitions(lagging, now, idle or {}, starved)
        for agent, tp, committed, age, waited, waiting in stuck:
            if worst is None or age - partition_grace > worst[1]:
                worst = (f"{tp.topic}[{tp.partition}] of agent {agent} ({waiting} messages waiting at {committed}, "
                         f"none taken in {age:.0f}s while the agent waited {waited:.0f}s for messages)",
                         age - partition_grace)
        self.stuck = [(agent, tp, committed, age) for agent, tp, committed, age, _, _ in stuck]
        return worst

    def _stuck_partitions(self, lagging: dict, now: float, idle: dict, starved: dict) -> list:
        current = {(agent, tp): c for agent, partitions in lagging.items() for tp, (c, _) in partitions.items()}
        for key in [k for k in self.partitions if k not in current]:
            del self.partitions[key]
        stuck = []
        for (agent, tp), committed in current.items():
            seen = self.partitions.get((agent, tp))
            if seen is None or seen[0] != committed:
                self.partitions[(agent, tp)] = (committed, now, idle.get(agent, 0.0), starved.get(agent, 0.0))
                continue
            excused = starved.get(agent, 0.0) - seen[3]
            waited = idle.get(agent, 0.0) - seen[2] - excused
            if waited >= IDLE_EVIDENCE:
                highwater = lagging[agent][tp][1]
                stuck.append((agent, tp, committed, now - seen[1] - excused, waited, highwater - committed))
        return stuck

    def reset(self) -> None:
        self.since.clear()
        self.partitions.clear()
        self.stuck = []


@dataclass
class Watchdog:
    bootstrap: str
    bound: float
    service: str
    stalls: Stalls = field(default_factory=lambda: STALLS)
    # Partitions with messages waiting and their positions (None: not now, e.g.
    # while rebalancing); see Progress.
    lagging: object = None
    progress: Progress = field(default_factory=Progress)
    activity: AgentActivity = field(default_factory=lambda: ACTIVITY)
    # Called with (partition, position) for a partition stuck a bound: a second chance
    # (read it again from its commit) before the process gives up and exits.
    mend: object = None
    # Bounds a partition may stay stuck (Progress, the second rule) before the process exits;
    # an agent that makes no progress at all, or work that hangs, exits after one. On a
    # loaded 2-core machine under the 20,000-alert storm, partitions whose messages came
    # only after 8 to 24 s of the agent idling were seen again and again, and at one bound
    # their mends and exits restarted triage every minute; what the rule is for (a partition
    # never read again) stays so for good, and a few bounds later is caught all the same.
    partition_bounds: float = 4.0
    unhealthy: str | None = None
    _outage: bool = False
    _mended: set = field(default_factory=set)
    _last_mend: float | None = None  # monotonic, the last mend made (check gives it half a bound)
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
        now = time.monotonic()
        stuck = self.progress.observe(lagging, now=now, idle=self.activity.idle_seconds(now),
                                      starved=self.activity.starved_seconds(now),
                                      partition_grace=(self.partition_bounds - 1) * self.bound)
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

    async def check(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        oldest = self.oldest()
        self._mend_stuck(now)
        if oldest is None or oldest[1] <= self.bound:
            return None
        if self._last_mend is not None and now - self._last_mend < self.bound / 2:
            # A mend just made gets its chance: evidence that builds up only after the bound
            # (an agent busy, then idle) would otherwise mend and exit in the same round.
            return None
        answers = await broker_answers(self.bootstrap)
        if not answers and not self._outage:
            log.warning("%s: %s waiting for %.0fs; the broker refuses connections: waiting for it", self.service,
                        oldest[0], oldest[1])
        self._outage = not answers
        return verdict(oldest, self.bound, answers)

    def _mend_stuck(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        current = set()
        for agent, tp, committed, age in self.progress.stuck:
            current.add((tp, committed))
            if self.mend is None or age <= self.bound or (tp, committed) in self._mended:
                continue
            self._mended.add((tp, committed))
            self._last_mend = now
            log.warning("%s: %s[%s] of agent %s has had messages waiting at %s for %.0fs that never came while "
                        "the agent waited; reading it again from there", self.service, tp.topic, tp.partition, agent,
                        committed, age)
            self.mend(tp, committed)
        self._mended &= current

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
