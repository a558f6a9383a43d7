"""The JSON producer's outage rules (shared/kafka/json_producer.py), with a stand-in for aiokafka's
producer: a send that is not acknowledged fails promptly, the producer is replaced, sends fail at
once meanwhile, and what the replaced producer held is failed, never sent later."""
from __future__ import annotations

import asyncio
import socket

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, OutOfOrderSequenceNumber

from shared.kafka import json_producer
from shared.kafka.json_producer import BrokerUnavailable, JsonProducer, breaks_producer


class FakeAccumulator:
    def __init__(self) -> None:
        self.failed_with: Exception | None = None
        self.held: list[asyncio.Future] = []
        self._pending_batches: set = set()

    def fail_all(self, exc: Exception) -> None:
        self.failed_with = exc
        for future in self.held:
            if not future.done():
                future.set_exception(exc)


class FakeSender:
    sender_task = None


class FakeClient:
    async def close(self) -> None:
        pass

    async def fetch_all_metadata(self) -> None:
        pass


class FakeProducer:
    """``answer``: 'ack' resolves each send, 'hang' never does, an exception fails it."""

    def __init__(self, world: "World") -> None:
        self.world = world
        self._sender, self._message_accumulator, self.client = FakeSender(), FakeAccumulator(), FakeClient()
        self._closed = False

    async def start(self) -> None:
        if not self.world.broker_up:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")
        self.world.started += 1

    async def stop(self) -> None:
        self._closed = True

    async def send(self, topic, value, key=None, partition=None):
        future = asyncio.get_running_loop().create_future()
        answer = self.world.answer
        if answer == "ack":
            future.set_result(None)
            self.world.stored.append(value)
        elif isinstance(answer, Exception):
            future.set_exception(answer)
        else:
            self._message_accumulator.held.append(future)
        return future


class World:
    def __init__(self) -> None:
        self.broker_up, self.answer, self.started, self.stored = True, "ack", 0, []


def _listening_port() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(json_producer, "RETRY_SECONDS", 0.01)
    monkeypatch.setattr(json_producer, "CHECK_SECONDS", 0.05)


def _producer(world: World, bootstrap: str, send_seconds: float = 0.3) -> JsonProducer:
    producer = JsonProducer(bootstrap, "test", send_seconds=send_seconds)
    producer._new = lambda: FakeProducer(world)  # noqa: SLF001 - the stand-in for aiokafka
    return producer


async def _until(condition, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_an_unacknowledged_send_fails_within_its_bound_and_a_fresh_producer_takes_over(fast):
    server = _listening_port()  # the broker's port answers: only the bound ends the wait
    world = World()

    async def go():
        producer = _producer(world, f"127.0.0.1:{server.getsockname()[1]}")
        await producer.start()
        await producer.send_encoded("alerts.intake", [(b"k", b"first")])
        first = producer._producer  # noqa: SLF001
        world.answer, world.broker_up = "hang", False
        started = asyncio.get_running_loop().time()
        with pytest.raises(BrokerUnavailable, match="no acknowledgement within"):
            await producer.send_encoded("alerts.intake", [(b"k", b"held")])
        waited = asyncio.get_running_loop().time() - started
        assert 0.25 <= waited < 1.0, waited
        # What the replaced producer held is failed: it will never be written behind our back.
        assert isinstance(first._message_accumulator.failed_with, BrokerUnavailable)  # noqa: SLF001
        assert first._closed  # noqa: SLF001
        # Meanwhile every send fails at once.
        started = asyncio.get_running_loop().time()
        with pytest.raises(BrokerUnavailable, match="unavailable"):
            await producer.send_encoded("alerts.intake", [(b"k", b"during")])
        assert asyncio.get_running_loop().time() - started < 0.05
        assert not producer.available and not await producer.connected()
        world.answer, world.broker_up = "ack", True
        await _until(lambda: producer.available)
        await producer.send_encoded("alerts.intake", [(b"k", b"after")])
        await producer.stop()

    try:
        asyncio.run(go())
    finally:
        server.close()
    assert world.stored == [b"first", b"after"] and world.started == 2


def test_a_broker_that_refuses_connections_fails_a_waiting_send_before_the_bound(fast):
    world = World()

    async def go():
        producer = _producer(world, f"127.0.0.1:{_closed_port()}", send_seconds=5.0)
        await producer.start()
        world.answer, world.broker_up = "hang", False
        started = asyncio.get_running_loop().time()
        with pytest.raises(BrokerUnavailable, match="refuses connections"):
            await producer.send_encoded("alerts.intake", [(b"k", b"v")])
        assert asyncio.get_running_loop().time() - started < 1.0
        await producer.stop()

    asyncio.run(go())


def test_a_broken_sequence_replaces_the_producer_and_the_message_s_own_error_does_not(fast):
    world = World()

    async def go():
        producer = _producer(world, f"127.0.0.1:{_closed_port()}")
        await producer.start()
        world.answer = MessageSizeTooLargeError()
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_encoded("alerts.intake", [(b"k", b"v")])
        assert producer.available and world.started == 1
        world.answer = OutOfOrderSequenceNumber()
        with pytest.raises(OutOfOrderSequenceNumber):
            await producer.send_encoded("alerts.intake", [(b"k", b"v")])
        world.answer = "ack"
        await _until(lambda: producer.available)
        assert world.started == 2
        await producer.send_encoded("alerts.intake", [(b"k", b"again")])
        await producer.stop()

    asyncio.run(go())
    assert world.stored == [b"again"]


def test_what_breaks_a_producer():
    assert breaks_producer(OutOfOrderSequenceNumber())
    assert breaks_producer(KafkaConnectionError())
    assert breaks_producer(BrokerUnavailable())
    assert not breaks_producer(MessageSizeTooLargeError())


def test_a_message_on_the_wire_when_its_send_is_given_up_on_is_acknowledged_not_refused(fast):
    """The sender of a replaced producer is cancelled and its request in flight comes back
    written: the send succeeds (202 at intake), rather than a 503 the client would resend."""
    server = _listening_port()
    world = World()

    async def go():
        producer = _producer(world, f"127.0.0.1:{server.getsockname()[1]}")
        await producer.start()
        first = producer._producer  # noqa: SLF001
        world.answer = "hang"

        async def sender_with_a_request_in_flight():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                for future in first._message_accumulator.held:  # noqa: SLF001 - the broker's late answer
                    future.set_result(None)
                raise

        first._sender.sender_task = asyncio.create_task(sender_with_a_request_in_flight())  # noqa: SLF001
        await producer.send_encoded("alerts.intake", [(b"k", b"on the wire")])
        assert not producer.available or producer._producer is not first  # noqa: SLF001 - replaced all the same
        await producer.stop()

    try:
        asyncio.run(go())
    finally:
        server.close()
