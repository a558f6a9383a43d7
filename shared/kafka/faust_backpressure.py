"""Tell the watchdog when Faust's fetch loop is held back (liveness.AgentActivity).

One fetch loop hands a process's agents their messages (faust/transport/conductor.py). It
waits, delivering nothing to anyone, in two places: on the queue of an agent that is full
(``Topic.put``, the conductor's path for a full queue), and before every message while the
producer's buffer of table writes is over its limit (``ProducerBuffer.wait_until_ebb``).
Both are back-pressure from a busy process, not a stall; the agents waiting meanwhile are
starved, and the watchdog does not count those seconds against them.
"""
from __future__ import annotations

from faust.topics import Topic
from faust.transport.producer import ProducerBuffer

from .liveness import ACTIVITY

_original_put = Topic.put
_original_wait_until_ebb = ProducerBuffer.wait_until_ebb


async def _put(self: Topic, event) -> None:
    """The original; while it waits on a full queue, the fetch loop is held."""
    queue = self.queue if self.is_iterator else None
    if queue is None or not queue.full():
        await _original_put(self, event)
        return
    with ACTIVITY.hold():
        await _original_put(self, event)


async def _wait_until_ebb(self: ProducerBuffer) -> None:
    """The original; while the buffer is over its limit, the fetch loop is held."""
    if self.size <= self.max_messages:
        return
    with ACTIVITY.hold():
        await _original_wait_until_ebb(self)


Topic.put = _put
ProducerBuffer.wait_until_ebb = _wait_until_ebb
