"""An agent starved by a held-back fetch loop is not a stall (shared/kafka/liveness.py,
shared/kafka/faust_backpressure.py); a busy agent or a partition that never comes still is."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from shared.kafka import faust_backpressure
from shared.kafka.liveness import IDLE_EVIDENCE, AgentActivity, Progress, verdict

COMMANDS, CORRELATION = TP("incident.commands", 3), TP("triage.correlation", 0)


def _observe(progress: Progress, activity: AgentActivity, lagging: dict, now: float):
    return progress.observe(lagging, now=now, idle=activity.idle_seconds(now), starved=activity.starved_seconds(now))


def test_an_agent_starved_behind_a_full_queue_is_neither_stuck_nor_stalled_until_the_loop_delivers_again():
    activity, progress = AgentActivity(), Progress()
    activity.waiting("apply", now=0.0)  # apply waits for messages; correlate is busy, its queue full
    activity.held(now=0.0)
    for second in range(0, 61, 2):  # a minute of storm: apply's partition waits, and apply is not fed
        found = _observe(progress, activity, {"apply": {COMMANDS: (8, 286)}}, float(second))
        assert found is None or found[1] == 0.0, found  # no second of it counts
        assert verdict(found, 15.0, broker_answers=True) is None
    assert progress.stuck == []
    activity.released(now=60.0)
    # Delivering again, and still nothing comes: now the partition is stuck, timed from the release.
    for second in range(61, 61 + int(IDLE_EVIDENCE) + 4):
        found = _observe(progress, activity, {"apply": {COMMANDS: (8, 286)}}, float(second))
    assert [(agent, tp) for agent, tp, _, _ in progress.stuck] == [("apply", COMMANDS)]
    assert "apply (278 messages waiting at" in found[0]
    assert found[1] == second - 60.0, found


def test_a_busy_agent_is_not_excused_by_a_held_fetch_loop():
    """correlate hangs in a handler: its own queue fills and holds the loop; that is still a stall."""
    activity, progress = AgentActivity(), Progress()
    activity.waiting("correlate", now=0.0)
    activity.working("correlate", now=0.5)
    activity.held(now=1.0)
    assert _observe(progress, activity, {"correlate": {CORRELATION: (9, 2000)}}, 0.0) is None
    stalled = _observe(progress, activity, {"correlate": {CORRELATION: (9, 2000)}}, 30.0)
    assert stalled is not None and stalled[1] == 30.0 and "agent correlate" in stalled[0]
    assert verdict(stalled, 15.0, broker_answers=True) is not None


def test_starved_seconds_are_the_overlap_of_waiting_and_held():
    activity = AgentActivity()
    activity.waiting("apply", now=0.0)
    activity.held(now=2.0)
    activity.held(now=3.0)  # a second hold inside the first: one interval
    activity.released(now=4.0)
    assert activity.starved_seconds(now=5.0) == {"apply": 3.0}  # still held since 2
    activity.working("apply", now=6.0)  # fed: no longer starved, though the loop is still held
    activity.released(now=7.0)
    activity.waiting("apply", now=8.0)
    assert activity.starved_seconds(now=9.0) == {"apply": 4.0}
    assert activity.idle_seconds(now=9.0) == {"apply": 7.0}
    activity.held(now=10.0)
    assert activity.starved_seconds(now=12.0) == {"apply": 6.0}


def test_the_fetch_loop_is_held_while_it_waits_on_a_full_agent_queue(monkeypatch):
    activity = AgentActivity()
    monkeypatch.setattr(faust_backpressure, "ACTIVITY", activity)

    async def scenario():
        topic = SimpleNamespace(is_iterator=True, queue=asyncio.Queue(maxsize=1))
        await faust_backpressure._put(topic, "first")  # room: not held
        assert activity.holding == 0
        delivery = asyncio.ensure_future(faust_backpressure._put(topic, "second"))
        await asyncio.sleep(0)  # let it reach the full queue
        assert activity.holding == 1 and not delivery.done()
        assert topic.queue.get_nowait() == "first"  # the busy agent takes one
        await delivery
        assert activity.holding == 0 and topic.queue.get_nowait() == "second"

    asyncio.run(scenario())


def test_the_fetch_loop_is_held_while_the_producer_buffer_is_over_its_limit(monkeypatch):
    activity = AgentActivity()
    monkeypatch.setattr(faust_backpressure, "ACTIVITY", activity)
    seen = []

    async def flush_atmost(n):
        seen.append((n, activity.holding))

    async def scenario():
        await faust_backpressure._wait_until_ebb(SimpleNamespace(size=10, max_messages=100, flush_atmost=flush_atmost))
        await faust_backpressure._wait_until_ebb(SimpleNamespace(size=1071, max_messages=100, flush_atmost=flush_atmost))

    asyncio.run(scenario())
    assert seen == [(100, 1)] and activity.holding == 0


def test_a_mend_gets_half_a_bound_before_the_process_gives_up():
    """Evidence that builds up only after the bound once mended and exited in the same round
    ("messages waiting at 5 for 21s ... reading it again", the exit 0.07 s later)."""
    from shared.kafka.liveness import Watchdog

    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mended = []
        dog = Watchdog(f"127.0.0.1:{port}", bound=15.0, service="triage",
                       mend=lambda tp, offset: mended.append((tp, offset)))
        dog.oldest = lambda: ("no progress on triage.correlation[1]", 21.0)
        dog.progress.stuck = [("triage.correlate", CORRELATION, 5, 21.0)]
        try:
            assert await dog.check(now=100.0) is None and mended == [(CORRELATION, 5)]
            assert await dog.check(now=107.0) is None  # its chance: half the bound
            verdict_ = await dog.check(now=108.0)
            assert verdict_ is not None and "triage.correlation[1]" in verdict_
            assert mended == [(CORRELATION, 5)]  # once per episode
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())


class _Consumer:
    def __init__(self, buffered=(), paused=()):
        self._buffered_partitions, self._paused_partitions = set(buffered), set(paused)
        self.active = set()
        self.should_stop = False
        self.seeks = []

    def _get_active_partitions(self):
        return self.active

    def assignment(self):
        return {CORRELATION, COMMANDS}

    async def seek(self, tp, offset):
        self.seeks.append((tp, offset))


def test_the_mend_puts_a_partition_taken_out_on_a_full_queue_back_into_the_fetch():
    from shared.kafka import faust_fixes

    consumer = _Consumer(buffered={CORRELATION})
    asyncio.run(faust_fixes.reread(consumer, CORRELATION, 5))
    assert CORRELATION in consumer.active and consumer._buffered_partitions == set()
    assert consumer.seeks == [(CORRELATION, 5)]
    paused = _Consumer(paused={COMMANDS})  # paused by Faust (recovery, rebalance): left paused
    asyncio.run(faust_fixes.reread(paused, COMMANDS, 8))
    assert COMMANDS not in paused.active and paused.seeks == [(COMMANDS, 8)]
    fetched = _Consumer()  # neither taken out nor paused: the fetch is left as it is
    asyncio.run(faust_fixes.reread(fetched, COMMANDS, 8))
    assert fetched.active == set() and fetched.seeks == [(COMMANDS, 8)]
