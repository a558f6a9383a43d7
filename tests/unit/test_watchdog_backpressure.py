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
