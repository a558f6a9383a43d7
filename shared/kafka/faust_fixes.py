"""Corrections to faust-streaming 0.15.3's offset bookkeeping, without which a restart or a
rebalance loses messages (measured here: 3 of 6 restarts of triage in the middle of
1,000 alerts lost 60 to 250 of them; with the first correction alone, 1 run in 4 still
left 7 to 25 stuck or lost; with all of them, none). They apply to the topics our agents
consume (``guard_topics``), never to changelogs.

1. While flow control is suspended (shutdown, rebalance, recovery) or a message belongs to
   an older consumer generation, Faust passes the message over *and acknowledges it*, so
   the next commit covers a message nobody processed (faust-streaming #216, #221). Here
   only a message an agent of ours has handled is acknowledged; one passed over stays
   uncommitted, and its partition is rewound to it so that it is read again now rather
   than after the next rebalance.
2. Faust drops a fetched message whose offset is below the partition's "read offset", the
   last offset its fetch loop delivered. Every rebalance ends with a seek to the committed
   offsets, but a fetch loop still delivering the old generation's batch writes its own,
   higher read offset after that seek, and the messages read again after the seek were
   then dropped as already read: lost, since nothing had processed them. Here nothing of
   ours is dropped for its offset: a message read twice is handled twice, which every
   handler recognises by its position (messages are still handled in offset order per
   partition: what is read again starts at the committed offset). The same bookkeeping made Faust
   acknowledge a "gap" of offsets it had fetched and dropped; with no read offset there is
   no gap, and the seek at the end of the rebalance reads them again.

3. Even so, the fetch loop was seen to hand an agent a partition's messages with a hole
   (offsets 6004..6010, then 6016.., the hole read only after the next rebalance). A
   handler that recognises redelivery by the highest position seen then takes the late
   ones for duplicates. Here an agent takes a partition's messages strictly in offset
   order (``admit``): on a hole it leaves the message unhandled and rewinds the partition
   to the first missing offset. A hole that stays after several rewinds is checked with
   the broker: offsets that hold no record (transaction markers of another producer on
   the intake topic, compaction) are passed, exactly those; a record is always read.
   (An earlier rule that passed a hole after 30 s lost 1,417 alerts of a storm on a
   loaded machine, where the rewound partition took longer than that to come again.)

4. After a partition assignment Faust resumes the stream partitions and only then seeks
   them to the committed offsets, so an agent can be handed messages fetched from another
   position (the log's end) before that seek is done. Measured on a triage SIGKILLed mid-burst
   (tests/integration/test_fault_service_kills.py): its successor's first batch began 112
   offsets past the commit; the seek then brought the skipped ones, and the handlers took
   them for copies (the positions they remember had moved past them): 338 of 3,065 alerts
   lost. Here nothing is admitted from an assignment until its seek has completed; what
   came before is held back unacknowledged, and the seek brings it again in order. A
   partition with no commit yet is not sought at all by Faust, and was read from its end:
   a notification service restarted after the first audit events of a partition lost their
   notifications. Here such a partition is sought to its start (``earliest``, as configured).

5. Faust's ``Consumer.seek`` calls the Kafka client's ``seek`` from the service's event loop,
   while the client lives in the consumer thread's own loop: its fetcher, handling a fetch
   response in that thread at the same moment, can overwrite the position just set, and
   the wake-up of its fetch task is scheduled on a loop from outside it. A rewind was then
   seen to bring nothing back (messages waiting on a partition that never came, until the
   watchdog restarted the service: three times in one drain of the chaos soak). Here every
   seek of ours runs in the consumer's thread (``seek``), as Faust's own seek to the
   committed offsets does.

All of this only ever withholds an acknowledgement or reads again, never skips a record.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import Consumer

log = logging.getLogger(__name__)

_GUARDED: set[str] = set()
_HANDLED: set[tuple[str, int, int]] = set()
_REWIND: dict = {}  # TP -> the lowest offset passed over, until its partition is rewound
_NEXT: dict = {}  # TP -> (consumer generation, the next offset an agent may take)
_HOLES: dict = {}  # (TP, first missing offset) -> (rewinds made for it, first seen, monotonic)
_GAPS: dict = {}  # (TP, offset) -> the next offset holding a record (the broker said so)
_VERIFYING: set = set()
VERIFY_AFTER_REWINDS = 3
_HELD: set = set()  # (TP, offset) that admit() held back, until Faust asks to acknowledge them
_REWOUND: dict = {}  # TP -> (offset, monotonic) of the last rewind done
REWIND_PATIENCE = 5.0  # seconds a rewind has to bring its first message before another
_LOCK = threading.Lock()
_original_ack = Consumer.ack
_original_init = Consumer.__init__


_AGENTS: dict[str, frozenset[str]] = {}


def guard_topics(channel, agent: str = "") -> None:
    """Messages of these topics are acknowledged only once an agent has handled them."""
    names = getattr(channel, "topics", None) or [channel.get_topic_name()]
    _GUARDED.update(names)
    if agent:
        _AGENTS[agent] = frozenset(names)


def agent_topics() -> dict[str, frozenset[str]]:
    """Each agent of ours and the topics it reads (the live map: agents register as built)."""
    return _AGENTS


def handled(message) -> None:
    with _LOCK:
        _HANDLED.add((message.topic, message.partition, message.offset))


def _ack(self: Consumer, message) -> bool:
    if message.topic in _GUARDED:
        key = (message.topic, message.partition, message.offset)
        with _LOCK:
            if key not in _HANDLED:
                # Passed over, not processed: leave it to be read again; do not let Faust
                # wait for it before a rebalance either.
                self._unacked_messages.discard(message)
                log.debug("not acknowledging %s[%s]@%s: not handled", *key)
                if (message.tp, message.offset) in _HELD:
                    _HELD.discard((message.tp, message.offset))  # admit() has seen to its rewind
                else:
                    _rewind_later(self, message.tp, message.offset)
                return False
            _HANDLED.discard(key)
    return _original_ack(self, message)


def _rewind_later(consumer: Consumer, tp, offset: int) -> bool:
    """Seek ``tp`` back to ``offset`` soon: one seek for a run of messages passed over, none
    when a recent rewind already reads from at or below it. True when a seek is newly due."""
    done = _REWOUND.get(tp)
    if done is not None and done[0] <= offset and time.monotonic() - done[1] < REWIND_PATIENCE:
        return False  # queued before that rewind: it brings this message again
    pending = _REWIND.get(tp)
    _REWIND[tp] = offset if pending is None else min(pending, offset)
    if pending is not None:
        return False
    try:
        asyncio.get_running_loop().create_task(_rewind(consumer, tp))
    except RuntimeError:
        _REWIND.pop(tp, None)  # no loop: shutting down; the next start reads from the commit
        return False
    return True


async def seek(consumer: Consumer, tp, offset: int) -> None:
    """Seek ``tp`` to ``offset`` in the thread the Kafka client runs in (correction 5)."""
    thread = getattr(consumer, "_thread", None)
    if thread is None:  # a consumer without a thread of its own: its seek is safe as it is
        await consumer.seek(tp, offset)
        return
    await thread.call_thread(thread._ensure_consumer().seek, tp, offset)
    consumer._read_offset[tp] = offset if offset else None  # as Faust's seek does (ours are never read)


async def _rewind(consumer: Consumer, tp) -> None:
    await asyncio.sleep(0)  # let the rest of the passed-over run arrive first
    with _LOCK:
        offset = _REWIND.pop(tp, None)
    if offset is None or consumer.should_stop or tp not in consumer.assignment():
        return  # revoked: its next owner starts from the committed offset anyway
    try:
        await seek(consumer, tp, offset)
        with _LOCK:
            _REWOUND[tp] = (offset, time.monotonic())
        log.debug("%s: rewound to %s", tp, offset)
    except Exception as exc:  # noqa: BLE001 - a failed rewind leaves them to the next rebalance
        log.warning("%s: could not rewind to %s (%s); they are read after the next rebalance", tp, offset, exc)


def forget(tp) -> None:
    """Drop what is known of ``tp``'s order and rewinds: it is read again from its commit."""
    with _LOCK:
        _NEXT.pop(tp, None)
        _REWIND.pop(tp, None)
        _REWOUND.pop(tp, None)
        for key in [k for k in _HOLES if k[0] == tp]:
            del _HOLES[key]
        for key in [k for k in _HELD if k[0] == tp]:
            _HELD.discard(key)


async def reread(consumer: Consumer, tp, offset: int) -> None:
    """Read ``tp`` again from ``offset`` (its committed offset): the watchdog's mend for a
    partition whose waiting messages never came (liveness.Watchdog)."""
    if consumer.should_stop or tp not in consumer.assignment():
        return
    forget(tp)
    fetch_again(consumer, tp)
    try:
        await seek(consumer, tp, offset)
    except Exception as exc:  # noqa: BLE001 - not mended: the watchdog's exit follows at the bound
        log.warning("%s: could not seek to %s (%s)", tp, offset, exc)


def fetch_again(consumer: Consumer, tp) -> None:
    """Put ``tp`` back among the partitions the fetch loop fetches.

    On a full agent queue Faust takes the partition out of its active set
    (``Consumer.on_buffer_full``), and only that queue's pressure-drop callback puts it back
    (``on_buffer_drop``). Should that callback never come (a rewind, a seek or a new
    generation between the two), the partition is never fetched again: messages waiting
    that never come, which no seek can bring. A partition paused by Faust (recovery,
    rebalance) stays paused."""
    if tp in getattr(consumer, "_paused_partitions", ()) or tp not in getattr(consumer, "_buffered_partitions", ()):
        return  # paused by Faust, or never taken out: the fetch is left as it is
    log.warning("%s: taken out of the fetch on a full queue and never put back; fetching it again", tp)
    consumer._buffered_partitions.discard(tp)
    consumer._get_active_partitions().add(tp)


def taken(consumer: Consumer, tp) -> int | None:
    """The next offset of ``tp`` its agent will take: past the last one it took in the current
    consumer generation, else the committed offset (None: no commit yet).

    The watchdog measures progress by this, not by the committed offset: commits trail what
    was taken by a commit interval and, under a storm, by a producer flush of several seconds
    ("Timer commit is overlapping"). Measured by commits, a fresh-clone make test on a loaded
    machine saw partitions whose messages were being taken as "none taken while the agent
    waited", and triage was restarted every minute through the 20,000-alert storm."""
    committed = consumer._committed_offset.get(tp)
    with _LOCK:
        known = _NEXT.get(tp)
    if known is None or known[0] != getattr(consumer.app, "consumer_generation_id", None):
        return committed  # nothing taken since the last assignment: it is read from the commit
    return max(known[1], committed or 0)


def admit(consumer: Consumer, message) -> bool:
    """Whether an agent may handle ``message`` now: the next one of its partition, or one
    read again (a duplicate its handler recognises). After a hole, False: the partition is
    rewound to the hole and the message comes again in order."""
    tp, offset, generation = message.tp, message.offset, message.generation_id
    with _LOCK:
        if getattr(consumer, "_seeks_due", 0) > getattr(consumer, "_seeks_done", 0):
            _HELD.add((tp, offset))  # fetched before the seek to the commit (correction 4)
            return False
        known = _NEXT.get(tp)
        if known is None or known[0] != generation:
            # First message of this generation: Faust has just sought to the committed offset,
            # or to the start for a partition with no commit (correction 4). Not the first
            # offset that happens to come: a message fetched before that seek can still be
            # queued, and taking it first would put what follows it out of order (an incident's
            # attach applied before its open, the open then taken for a copy).
            committed = consumer._committed_offset.get(tp)
            expected = committed if committed is not None else 0
        else:
            expected = known[1]
        if offset > expected and _GAPS.get((tp, expected), offset + 1) <= offset:
            expected = _GAPS.pop((tp, expected))  # the offsets before hold no records (verified)
        if offset > expected:
            _NEXT[tp] = (generation, expected)
            if _rewind_later(consumer, tp, expected):
                _count_rewind(consumer, tp, expected, offset)
            _HELD.add((tp, offset))  # its acknowledgement is withheld without another rewind
            return False
        _HOLES.pop((tp, expected), None)
        if offset >= expected:
            _NEXT[tp] = (generation, offset + 1)
        return True


def _count_rewind(consumer: Consumer, tp, expected: int, offset: int) -> None:
    rewinds, since = _HOLES.get((tp, expected), (0, time.monotonic()))
    if rewinds == 0:  # once per hole: the messages queued behind it come the same way
        log.warning("%s: offsets %s..%s skipped by the fetch loop; rewinding to %s", tp, expected, offset - 1, expected)
    _HOLES[(tp, expected)] = (rewinds + 1, since)
    if rewinds + 1 >= VERIFY_AFTER_REWINDS and (tp, expected) not in _VERIFYING:
        _VERIFYING.add((tp, expected))
        asyncio.get_running_loop().create_task(_verify_hole(consumer, tp, expected))


async def _verify_hole(consumer: Consumer, tp, offset: int) -> None:
    """Ask the broker what is at ``offset``: a record (Faust is slow to bring it again: keep
    waiting), or nothing until a later offset (transaction markers of another producer,
    compaction): then the offsets between are passed, exactly and only those."""
    reader = None
    try:
        bootstrap = ",".join(f"{url.host}:{url.port or 9092}" for url in consumer.app.conf.broker)
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await reader.start()
        reader.assign([tp])
        reader.seek(tp, offset)
        batches = await reader.getmany(tp, timeout_ms=5000, max_records=1)
        records = batches.get(tp) or []
        if records and records[0].offset > offset:
            with _LOCK:
                _GAPS[(tp, offset)] = records[0].offset
            log.warning("%s: offsets %s..%s hold no records (transaction markers or compaction): passed over", tp,
                        offset, records[0].offset - 1)
    except Exception as exc:  # noqa: BLE001 - unverified: the hole stays, and is asked about again
        log.warning("%s: could not ask the broker about offset %s (%s)", tp, offset, exc)
    finally:
        if reader is not None:
            await reader.stop()
        with _LOCK:
            _VERIFYING.discard((tp, offset))
            if (tp, offset) in _HOLES:  # asked again after as many rewinds more, should it stay
                _HOLES[(tp, offset)] = (0, _HOLES[(tp, offset)][1])


class _ReadOffsets(defaultdict):
    """Faust's per-partition read offsets, except that ours are never known: the fetch
    loop then delivers every message it fetches and sees no gaps (correction 2)."""

    def __getitem__(self, tp):
        if tp.topic in _GUARDED:
            return None
        return super().__getitem__(tp)


def _init(self: Consumer, *args, **kwargs) -> None:
    _original_init(self, *args, **kwargs)
    self._read_offset = _ReadOffsets(lambda: None, self._read_offset)


_original_assigned = Consumer.on_partitions_assigned
_original_perform_seek = Consumer.perform_seek


async def _on_partitions_assigned(self: Consumer, assigned, generation_id: int = 0) -> None:
    with _LOCK:
        self._seeks_due = getattr(self, "_seeks_due", 0) + 1  # its seek to the commit is now due
    await _original_assigned(self, assigned, generation_id)


async def _perform_seek(self: Consumer) -> None:
    due = getattr(self, "_seeks_due", 0)  # the assignment this seek serves (a later one needs its own)
    await _original_perform_seek(self)
    for tp in self.assignment():
        # Faust stores a commit of 0 as None too: both mean "from the start".
        if tp.topic in _GUARDED and self._committed_offset.get(tp) is None:
            await seek(self, tp, 0)
    with _LOCK:
        self._seeks_done = max(getattr(self, "_seeks_done", 0), due)


Consumer.ack = _ack
Consumer.__init__ = _init
Consumer.on_partitions_assigned = _on_partitions_assigned
Consumer.perform_seek = _perform_seek
