"""An agent takes a partition's messages strictly in offset order; a hole is read again."""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass, field

import pytest
from faust.types import TP

from shared.kafka import faust_fixes


@dataclass
class FakeConsumer:
    committed: dict = field(default_factory=dict)
    seeks: list = field(default_factory=list)
    should_stop: bool = False

    @property
    def _committed_offset(self):
        return self.committed

    def assignment(self):
        return {TP("triage.alerts", 0), TP("alerts.intake", 0)}

    async def seek(self, tp, offset):
        self.seeks.append((tp.topic, tp.partition, offset))


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    generation_id: int = 1

    @property
    def tp(self):
        return TP(self.topic, self.partition)


@pytest.fixture(autouse=True)
def fresh_state():
    for state in (faust_fixes._NEXT, faust_fixes._REWIND, faust_fixes._HOLES, faust_fixes._REWOUND):
        state.clear()
    faust_fixes._HELD.clear()
    faust_fixes._GAPS.clear()
    faust_fixes._VERIFYING.clear()
    yield


def _run(consumer, offsets, topic="triage.alerts", generation=1):
    async def go():
        taken = [o for o in offsets if faust_fixes.admit(consumer, Message(topic, 0, o, generation))]
        await asyncio.sleep(0.01)  # let the scheduled rewind run
        return taken

    return asyncio.run(go())


def test_in_order_messages_are_all_taken():
    consumer = FakeConsumer(committed={TP("triage.alerts", 0): 10})
    assert _run(consumer, [10, 11, 12, 13]) == [10, 11, 12, 13]
    assert consumer.seeks == []


def test_a_hole_holds_back_what_follows_and_rewinds_once_to_its_start():
    consumer = FakeConsumer(committed={TP("triage.alerts", 0): 10})
    assert _run(consumer, [10, 11, 15, 16, 17]) == [10, 11]
    assert consumer.seeks == [("triage.alerts", 0, 12)]
    # What the rewind brings comes in order; the copies of 15.. are then taken once more.
    assert _run(consumer, [12, 13, 14, 15, 16, 17]) == [12, 13, 14, 15, 16, 17]


def test_messages_read_again_are_taken_for_the_handler_to_recognise():
    consumer = FakeConsumer(committed={TP("triage.alerts", 0): 10})
    assert _run(consumer, [10, 11, 12, 10, 11, 12, 13]) == [10, 11, 12, 10, 11, 12, 13]


def test_a_new_generation_starts_from_the_committed_offset():
    consumer = FakeConsumer(committed={TP("triage.alerts", 0): 10})
    assert _run(consumer, [10, 11, 12]) == [10, 11, 12]
    consumer.committed[TP("triage.alerts", 0)] = 11
    assert _run(consumer, [11, 12, 13], generation=2) == [11, 12, 13]
    # The first message of a generation already beyond the commit is a hole.
    consumer.committed[TP("triage.alerts", 0)] = 14
    assert _run(consumer, [16], generation=3) == []
    assert consumer.seeks == [("triage.alerts", 0, 14)]


def test_a_hole_is_never_given_up_by_time_alone(monkeypatch):
    consumer = FakeConsumer(committed={TP("alerts.intake", 0): 10})
    monkeypatch.setattr(faust_fixes, "REWIND_PATIENCE", 0.0)
    for _ in range(10):
        assert _run(consumer, [12], topic="alerts.intake") == []
    assert len(consumer.seeks) == 10


def test_offsets_the_broker_says_hold_no_records_are_passed_exactly():
    consumer = FakeConsumer(committed={TP("alerts.intake", 0): 10})
    # As _verify_hole records it: 10 and 11 are transaction markers, 12 is the next record.
    faust_fixes._GAPS[(TP("alerts.intake", 0), 10)] = 12
    assert _run(consumer, [12, 13], topic="alerts.intake") == [12, 13]
    faust_fixes._GAPS[(TP("alerts.intake", 0), 14)] = 15
    assert _run(consumer, [16], topic="alerts.intake") == []  # 15 is a record: still awaited
    assert consumer.seeks[-1] == ("alerts.intake", 0, 15)


def test_an_agent_whose_commits_stay_put_while_messages_wait_is_a_stall():
    from shared.kafka.liveness import Progress, verdict

    progress = Progress()
    a = TP("triage.alerts", 0)
    assert progress.observe({"route": {a: (10, 50)}}, now=0.0) is None
    assert progress.observe({"route": {a: (30, 50)}}, now=20.0) is None  # it moved: progress
    stuck = progress.observe({"route": {a: (30, 60)}}, now=45.0)
    assert stuck is not None and stuck[1] == 25.0 and "30 messages waiting" in stuck[0]
    assert verdict(stuck, 20.0, broker_answers=True) is not None
    assert verdict(stuck, 20.0, broker_answers=False) is None  # the broker is away: an outage
    assert progress.observe({}, now=50.0) is None  # caught up: nothing waits


def test_one_partition_read_slowly_while_the_agent_moves_elsewhere_is_not_a_stall():
    from shared.kafka.liveness import Progress

    progress = Progress()
    a, b = TP("triage.alerts", 0), TP("triage.alerts", 1)
    progress.observe({"route": {a: (10, 50), b: (0, 90)}}, now=0.0)
    for second in range(1, 60):
        assert progress.observe({"route": {a: (10, 50), b: (second, 90)}}, now=float(second)) is None


def test_a_partition_whose_messages_never_come_while_its_agent_waits_is_stuck():
    from shared.kafka.liveness import IDLE_EVIDENCE, Progress

    progress = Progress()
    a, b = TP("incident.commands", 1), TP("incident.commands", 0)
    # b moves, so the agent as a whole progresses; a waits at 1 while the agent idles.
    progress.observe({"apply": {a: (1, 11), b: (0, 5)}}, now=0.0, idle={"apply": 0.0})
    assert progress.observe({"apply": {a: (1, 11), b: (5, 9)}}, now=4.0, idle={"apply": IDLE_EVIDENCE - 1}) is None
    stuck = progress.observe({"apply": {a: (1, 11), b: (9, 9)}}, now=20.0, idle={"apply": 18.0})
    assert stuck is not None and stuck[1] == 20.0
    assert "incident.commands[1] of agent apply (10 messages waiting at 1" in stuck[0]
    assert [(agent, tp, c) for agent, tp, c, _ in progress.stuck] == [("apply", a, 1)]


def test_a_busy_agent_behind_on_a_partition_is_not_stuck():
    from shared.kafka.liveness import Progress

    progress = Progress()
    a, b = TP("incident.commands", 1), TP("incident.commands", 0)
    progress.observe({"apply": {a: (1, 11), b: (0, 900)}}, now=0.0, idle={"apply": 0.0})
    for second in range(1, 60):  # never a second to spare: a storm, not a stall
        assert progress.observe({"apply": {a: (1, 11), b: (second * 10, 900)}}, now=float(second),
                                idle={"apply": 0.5}) is None
    assert progress.stuck == []


def test_the_watchdog_reads_a_stuck_partition_again_after_the_bound():
    from shared.kafka.liveness import AgentActivity, Watchdog

    a = TP("incident.commands", 1)
    clock = {"now": 0.0}
    activity = AgentActivity()
    activity.waiting("apply", now=0.0)
    mended = []
    dog = Watchdog("127.0.0.1:1", bound=20.0, service="triage", lagging=lambda: {"apply": {a: (1, 11)}},
                   activity=activity, mend=lambda tp, offset: mended.append((tp, offset)))

    def at(now):
        clock["now"] = now
        dog.progress.observe(dog.lagging(), now=now, idle=activity.idle_seconds(now=now))
        dog._mend_stuck()

    at(0.0)
    at(18.0)
    assert mended == []  # stuck, but not yet for the bound
    at(22.0)
    assert mended == [(a, 1)]
    at(30.0)
    assert mended == [(a, 1)]  # once per episode


def test_nothing_is_taken_between_an_assignment_and_its_seek_to_the_commit(monkeypatch):
    """A restarted worker was handed messages from past the commit before its seek (correction 4)."""
    async def seek_done(_consumer):
        pass

    monkeypatch.setattr(faust_fixes, "_original_assigned", lambda *_: seek_done(None))
    monkeypatch.setattr(faust_fixes, "_original_perform_seek", seek_done)
    consumer = FakeConsumer(committed={TP("alerts.intake", 0): 7})  # triage.alerts:0 has no commit yet
    faust_fixes.guard_topics(type("Channel", (), {"topics": ["triage.alerts", "alerts.intake"]})())
    asyncio.run(faust_fixes._on_partitions_assigned(consumer, set(), 3))
    # Fetched from the log's end before the seek: held back, no rewind (the seek brings them).
    assert _run(consumer, [144, 145, 146], generation=3) == []
    assert consumer.seeks == [] and faust_fixes._NEXT == {}
    asyncio.run(faust_fixes._perform_seek(consumer))
    # The partition with no commit is read from its start (Faust would leave it at its end).
    assert consumer.seeks == [("triage.alerts", 0, 0)]
    consumer.seeks.clear()
    consumer.committed[TP("triage.alerts", 0)] = 25
    # From the commit, in order.
    assert _run(consumer, [25, 26, 27], generation=3) == [25, 26, 27]
    # A second assignment needs its own seek: the first one's completion does not count for it.
    asyncio.run(faust_fixes._on_partitions_assigned(consumer, set(), 4))
    assert _run(consumer, [28], generation=4) == []
    asyncio.run(faust_fixes._perform_seek(consumer))
    assert consumer.seeks == []  # every partition has its commit now
    consumer.committed[TP("triage.alerts", 0)] = 28
    assert _run(consumer, [28], generation=4) == [28]


def test_a_partition_with_no_commit_counts_from_its_start_so_the_watchdog_sees_it():
    """A worker killed before its first commit left partitions without one: they were outside
    every liveness rule, and a restarted triage stalled on them for good."""
    from shared.kafka.liveness import Progress, lagging_partitions

    fresh, moving, done = TP("triage.alerts", 0), TP("triage.alerts", 1), TP("triage.alerts", 2)
    committed = {fresh: None, moving: 4, done: 9}
    highwater = {fresh: 12, moving: 9, done: 9}
    found = lagging_partitions([fresh, moving, done, TP("oncall.overrides", 0)], {"route": frozenset({"triage.alerts"})},
                               committed.get, highwater.get)
    assert found == {"route": {fresh: (0, 12), moving: (4, 9)}}
    progress = Progress()
    progress.observe(found, now=0.0, idle={"route": 0.0})
    progress.observe(found, now=6.0, idle={"route": 6.0})
    assert [(tp, offset) for _, tp, offset, _ in progress.stuck] == [(fresh, 0), (moving, 4)]


def test_a_rewind_seeks_in_the_consumer_thread_not_from_the_service_loop():
    """Faust's own seek touches the Kafka client from outside its thread (correction 5)."""
    calls = []

    class Client:
        def seek(self, tp, offset):
            calls.append(("client.seek", threading.current_thread().name, tp, offset))

    class ConsumerThread:
        def __init__(self):
            self.client, self.worker = Client(), concurrent.futures.ThreadPoolExecutor(1, "consumer-thread")

        def _ensure_consumer(self):
            return self.client

        async def call_thread(self, fun, *args):
            return await asyncio.wrap_future(self.worker.submit(fun, *args))

    @dataclass
    class ThreadedConsumer(FakeConsumer):
        _thread: ConsumerThread = field(default_factory=ConsumerThread)
        _read_offset: dict = field(default_factory=dict)

        async def seek(self, tp, offset):  # Faust's: from the caller's loop
            calls.append(("faust.seek", threading.current_thread().name, tp, offset))

    consumer = ThreadedConsumer()
    tp = TP("triage.alerts", 0)
    asyncio.run(faust_fixes.reread(consumer, tp, 5))
    consumer._thread.worker.shutdown()
    assert [(what, thread.startswith("consumer-thread"), offset) for what, thread, _, offset in calls] == [
        ("client.seek", True, 5)]
    assert consumer._read_offset == {tp: 5}


def test_a_partition_with_no_commit_is_taken_from_its_start_not_from_the_first_offset_that_comes():
    """A message fetched before the seek to the start, still queued, came first: what was
    before it came after, and an incident's open was taken for a copy of an applied command."""
    consumer = FakeConsumer(committed={})
    assert _run(consumer, [35, 36]) == []  # held back; the partition is rewound to its start
    assert consumer.seeks == [("triage.alerts", 0, 0)]
    assert _run(consumer, [0, 1, 2]) == [0, 1, 2]
