"""A commit waits for every table write before it: faust-streaming 0.15.3's flush gives up.

A table write (``table[key] = value``) is not sent at once: it is queued in the producer's
buffer, which a background task drains. Before committing offsets Faust flushes that buffer,
so that the committed offsets never run ahead of the changelog. But its flush waits at most
0.1 s for the background task to send *one* message and then returns, with the rest still
queued; and a message the task has taken but not yet handed to the Kafka client is not
waited for at all. On a loaded machine the commit then covers messages whose table writes
are still in memory, and a SIGKILL loses them: measured on triage killed mid-storm
(tests/integration/test_dedup_under_restart.py, one run in five), the correlation record
of a key opened just before the kill never reached its changelog while the intake offsets
past its opening alert were committed, so the restarted triage opened a second incident for
the key and counted two alerts on both.

Here the flush sends every queued message itself, waits for any the background task is
sending, and only then lets the Kafka client's own flush wait for their acknowledgements.
"""
from __future__ import annotations

import asyncio

from faust.transport.producer import ProducerBuffer

_original_send_pending = ProducerBuffer._send_pending


async def _send_pending(self: ProducerBuffer, fut) -> None:
    """The original, counted: a flush waits for a message being handed to the client."""
    self.__dict__["_in_flight"] = self.__dict__.get("_in_flight", 0) + 1
    try:
        await _original_send_pending(self, fut)
    finally:
        self._in_flight -= 1
        if not self._in_flight and (idle := self.__dict__.get("_idle")) is not None:
            idle.set()


async def _flush(self: ProducerBuffer) -> None:
    """Every queued message handed to the client (the client's flush then waits for the broker)."""
    while True:
        try:
            fut = self.pending.get_nowait()
        except asyncio.QueueEmpty:
            break
        await self._send_pending(fut)
    while self.__dict__.get("_in_flight", 0):
        idle = self.__dict__.setdefault("_idle", asyncio.Event())
        idle.clear()
        await idle.wait()


ProducerBuffer._send_pending = _send_pending
ProducerBuffer.flush = _flush
