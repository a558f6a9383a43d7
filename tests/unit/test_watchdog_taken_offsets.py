"""The watchdog measures an agent's progress by the offsets it takes, not by its commits
(shared/kafka/faust_fixes.py ``taken``, shared/kafka/health.py ``lagging_of``): commits trail
what was taken by seconds under a storm, and a partition being read was taken for a stuck one."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from shared.kafka import faust_fixes
from shared.kafka.health import lagging_of
from shared.kafka.liveness import IDLE_EVIDENCE, AgentActivity, Progress

TOPIC = "test-taken.commands"
COMMANDS = TP(TOPIC, 3)
AGENTS = {"triage.apply": frozenset({TOPIC})}


class _Consumer:
    def __init__(self, committed: int | None, highwater: int, generation: int = 7) -> None:
        self._committed_offset = {COMMANDS: committed}
        self.app = SimpleNamespace(consumer_generation_id=generation)
        self._highwater = highwater

    def assignment(self):
        return {COMMANDS}

    def highwater(self, tp):
        return self._highwater


def _message(offset: int, generation: int = 7):
    return SimpleNamespace(tp=COMMANDS, offset=offset, generation_id=generation)


@pytest.fixture(autouse=True)
def _clean():
    faust_fixes.forget(COMMANDS)
    yield
    faust_fixes.forget(COMMANDS)


def test_taken_is_the_commit_until_an_agent_takes_a_message_of_the_current_generation():
    consumer = _Consumer(committed=100, highwater=400)
    assert faust_fixes.taken(consumer, COMMANDS) == 100
    for offset in range(100, 150):
        assert faust_fixes.admit(consumer, _message(offset))
    assert faust_fixes.taken(consumer, COMMANDS) == 150
    consumer.app.consumer_generation_id = 8  # a new assignment: read again from the commit
    assert faust_fixes.taken(consumer, COMMANDS) == 100
    faust_fixes.forget(COMMANDS)
    assert faust_fixes.taken(_Consumer(committed=None, highwater=5), COMMANDS) is None


def test_a_partition_being_read_is_not_stuck_while_its_commit_stands_still():
    """As under the storm: the commit stays at 100 through a slow flush while the agent takes
    the partition's messages in batches, waiting a little between them."""
    consumer = _Consumer(committed=100, highwater=4000)
    progress, activity = Progress(), AgentActivity()
    now, offset = 0.0, 100
    for _ in range(60):  # a minute: 60 batches of 50, half a second's wait before each
        activity.waiting("triage.apply", now)
        now += 0.5
        activity.working("triage.apply", now)
        for _ in range(50):
            assert faust_fixes.admit(consumer, _message(offset))
            offset += 1
        now += 0.5
        found = progress.observe(lagging_of(consumer, AGENTS), now=now, idle=activity.idle_seconds(now),
                                 starved=activity.starved_seconds(now))
        assert found is None, found
    assert activity.idle_seconds(now)["triage.apply"] >= 6 * IDLE_EVIDENCE  # idle enough to have been accused


def test_a_partition_whose_messages_never_come_is_still_stuck_at_what_was_taken():
    consumer = _Consumer(committed=100, highwater=4000)
    for offset in range(100, 120):
        assert faust_fixes.admit(consumer, _message(offset))
    progress, activity = Progress(), AgentActivity()
    progress.observe(lagging_of(consumer, AGENTS), now=0.0, idle={}, starved={})
    activity.waiting("triage.apply", 0.0)  # nothing more comes: the agent waits
    later = IDLE_EVIDENCE + 1
    found = progress.observe(lagging_of(consumer, AGENTS), now=later, idle=activity.idle_seconds(later), starved={})
    assert found is not None and found[1] == later
    assert [(tp, position) for _, tp, position, _ in progress.stuck] == [(COMMANDS, 120)]


def test_a_stuck_partition_is_mended_after_a_bound_and_exits_the_process_only_after_four():
    """Under the storm, partitions idled 8 to 24 s and then came: one bound is no proof."""
    import asyncio

    from shared.kafka.liveness import Watchdog

    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mended, activity = [], AgentActivity()
        clock = {"now": 1000.0}
        moving = TP(TOPIC, 0)  # the agent's other partition is read: the agent is not stalled
        dog = Watchdog(f"127.0.0.1:{port}", bound=15.0, service="triage", activity=activity,
                       lagging=lambda: {"triage.apply": {COMMANDS: (120, 4000), moving: (int(clock["now"]), 9000)}},
                       mend=lambda tp, position: mended.append((tp, position)))
        real = __import__("time").monotonic
        try:
            __import__("time").monotonic = lambda: clock["now"]
            activity.waiting("triage.apply", clock["now"])  # the agent waits; nothing comes
            verdicts = {}
            for second in range(0, 75):
                clock["now"] = 1000.0 + second
                verdicts[second] = await dog.check(now=clock["now"])
        finally:
            __import__("time").monotonic = real
            server.close()
            await server.wait_closed()
        assert mended == [(COMMANDS, 120)]  # once, after a bound
        first = min(second for second, found in verdicts.items() if found is not None)
        assert 60 < first <= 62, first  # four bounds of 15 s
        assert f"{TOPIC}[3]" in verdicts[first] and "none taken in" in verdicts[first]

    asyncio.run(scenario())
