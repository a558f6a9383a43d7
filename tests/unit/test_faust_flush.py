"""Faust's flush before a commit waits for every queued table write (shared/kafka/faust_flush.py)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.transport.producer import ProducerBuffer

from shared.kafka import faust_flush  # noqa: F401 - the correction under test


class SlowClient:
    """A channel whose client takes its time to take a message, as on a loaded machine."""

    def __init__(self, delay: float) -> None:
        self.delay, self.taken = delay, []

    async def publish_message(self, fut, wait: bool = False) -> None:
        await asyncio.sleep(self.delay)
        self.taken.append(fut.n)


def _buffer() -> ProducerBuffer:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    return buffer


def _message(channel, n: int):
    return SimpleNamespace(n=n, message=SimpleNamespace(channel=channel))


def test_flush_hands_every_queued_write_to_the_client_however_slow():
    async def go():
        buffer, client = _buffer(), SlowClient(delay=0.15)  # longer than Faust's 0.1 s patience
        for n in range(3):
            buffer.put(_message(client, n))
        await buffer.flush()
        return client.taken, buffer.pending.qsize()

    taken, left = asyncio.run(go())
    assert (taken, left) == ([0, 1, 2], 0)


def test_flush_waits_for_a_write_the_background_task_is_handing_over():
    async def go():
        buffer, client = _buffer(), SlowClient(delay=0.2)
        sending = asyncio.ensure_future(buffer._send_pending(_message(client, 7)))
        await asyncio.sleep(0)  # the background task has taken it and is in the client
        await buffer.flush()
        taken_at_flush = list(client.taken)
        await sending
        return taken_at_flush

    assert asyncio.run(go()) == [7]


def test_flush_of_an_empty_buffer_returns_at_once():
    async def go():
        buffer = _buffer()
        await asyncio.wait_for(buffer.flush(), timeout=1)
        return buffer.pending.qsize()

    assert asyncio.run(go()) == 0
