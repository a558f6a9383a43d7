"""An aiokafka producer of pydantic messages as JSON, keyed by string, that rides out a broker outage.

A send waits at most ``SEND_SECONDS`` for the broker's acknowledgement, and fails at once
when the broker's port refuses connections: the caller answers 503 promptly instead of
hanging for aiokafka's 40 s request timeout (an idempotent producer retries a batch for
ever). A producer that timed out, or whose sequence state broke (aiokafka does not reset
its producer id after OutOfOrderSequenceNumber, as the Java client does: every later batch
of that partition was refused), is replaced by a fresh one, retried in the background
until the broker answers; meanwhile every send fails at once with ``BrokerUnavailable``.
What the replaced producer still held is never sent: a message answered as failed is not
written behind the caller's back (the caller sends it again).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException, InvalidTimestampError, InvalidTopicError, KafkaError, MessageSizeTooLargeError,
    RecordListTooLargeError, RecordTooLargeError, TopicAuthorizationFailedError, UnsupportedForMessageFormatError,
)
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import BaseModel

from ..outage import Outage
from .liveness import STALLS, broker_answers

log = logging.getLogger("kafka.producer")

# The most a send waits for the broker's acknowledgement: an intake request answers 503
# within it when the broker is unresponsive (a broker that refuses connections fails it
# within CHECK_SECONDS). Generous against a busy broker on a loaded machine: a storm's
# sends take well under a second.
SEND_SECONDS = 5.0
CHECK_SECONDS = 0.5  # while a send waits: how often whether the broker's port answers is looked at
START_SECONDS = 10.0  # one attempt to start a fresh producer (bootstrap and InitProducerId)
RETRY_SECONDS = 1.0  # back-off between such attempts
# How long a replaced producer's requests in flight are given to come back (written or not)
# before they are failed: only a broker that hangs (paused, not stopped) takes this long.
SETTLE_SECONDS = 2.0
# Failures that are the message's own, not the producer's: the producer goes on.
MESSAGE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError, InvalidTopicError,
                  TopicAuthorizationFailedError, CorruptRecordException, InvalidTimestampError,
                  UnsupportedForMessageFormatError)


class BrokerUnavailable(KafkaError):
    """Not acknowledged in time, or the producer is being replaced: nothing of the send was stored."""


# Alert storms repeat the same few thousand keys: the key's partition is remembered
# rather than hashed again (pure-Python murmur2 was a quarter of aiokafka's cost per message).
_PARTITION_CACHE_KEYS = 100_000
# A batch per partition, up to this size, rides each produce request (aiokafka's default of
# 16 KB is about 40 alerts, which capped intake at a few thousand alerts per round trip).
MAX_BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 1024 * 1024  # aiokafka's default, under the broker's message.max.bytes


class CachedPartitioner:
    """Kafka's default partitioning (murmur2 of the key, as the Java client), memoised per key."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            # Only keyed messages are produced here; spread the odd one like aiokafka would.
            return (available or all_partitions)[0]
        slot = (key, len(all_partitions))
        partition = self._cache.get(slot)
        if partition is None:
            if len(self._cache) >= _PARTITION_CACHE_KEYS:
                self._cache.clear()
            partition = self._cache[slot] = all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
        return partition


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json().encode("utf-8")



def breaks_producer(error: BaseException) -> bool:
    """Whether a failed send leaves the producer unfit (replace it) or was the message's own."""
    return not isinstance(error, MESSAGE_ERRORS)


class JsonProducer:
    def __init__(self, bootstrap: str, client_id: str, send_seconds: float = SEND_SECONDS) -> None:
        self._bootstrap, self._client_id, self._send_seconds = bootstrap, client_id, send_seconds
        self._producer: AIOKafkaProducer | None = None
        self._replacing: asyncio.Task | None = None
        self._settling: tuple[AIOKafkaProducer, asyncio.Task] | None = None
        self._stopping = False
        self._outage = Outage(f"Kafka broker (producer {client_id})")
        self._port_checked = (0.0, True)  # (monotonic, answered): one port check serves every waiting send
        self._port_check: asyncio.Task | None = None

    def _new(self) -> AIOKafkaProducer:
        # acks=all + idempotence: an accepted alert is on the broker's log before we answer 2xx.
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            # One produce request is in flight at a time; what arrives meanwhile waits for the
            # next anyway, so lingering longer would only add latency to a lone alert.
            linger_ms=1,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            partitioner=CachedPartitioner(),
        )

    async def start(self) -> None:
        producer = self._new()
        try:
            await producer.start()
        except BaseException:
            await _settle(producer)
            raise
        self._producer = producer

    async def stop(self) -> None:
        self._stopping = True
        if self._replacing is not None:
            self._replacing.cancel()
            with contextlib.suppress(BaseException):
                await self._replacing
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    @property
    def available(self) -> bool:
        """Whether sends go to the broker now (False while a fresh producer is being started)."""
        return self._producer is not None

    async def send(self, topic: str, key: str, message: BaseModel, partition: int | None = None) -> None:
        await self._send_all(topic, [(key.encode("utf-8"), encode(message), partition)])

    async def send_many(self, topic: str, items: list[tuple[str, BaseModel]]) -> None:
        """Send a batch and wait until every message is acknowledged."""
        await self.send_encoded(topic, [(key.encode("utf-8"), encode(message)) for key, message in items])

    async def send_encoded(self, topic: str, items: list[tuple[bytes, bytes]]) -> None:
        """Send already encoded (key, value) pairs and wait until every one is acknowledged.

        A message too large for the broker refuses the whole batch before any is sent."""
        for key, value in items:
            if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(f"a message of {len(value)} bytes is over {MAX_REQUEST_BYTES}")
        await self._send_all(topic, [(key, value, None) for key, value in items])

    async def _send_all(self, topic: str, items: list[tuple[bytes, bytes, int | None]]) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable(f"the broker is unavailable (down for {self._outage_seconds():.0f}s); retry")
        deadline = time.monotonic() + self._send_seconds
        with STALLS.watch(f"producer send to {topic}"):
            futures = []
            try:
                async with asyncio.timeout(self._send_seconds):
                    for key, value, partition in items:
                        future = await producer.send(topic, value, key=key, partition=partition)
                        # Its failure is read even when this send has given up on it (no "Future
                        # exception was never retrieved" when a replaced producer fails it later).
                        future.add_done_callback(_retrieved)
                        futures.append(future)
            except TimeoutError:
                reason = f"no room or no metadata for {topic} within {self._send_seconds:.0f}s"
                await self._retire(producer, reason)
                raise BrokerUnavailable(f"not stored: {reason}; retry") from None
            except KafkaError as exc:
                if breaks_producer(exc):
                    await self._retire(producer, f"a send failed with {type(exc).__name__}: {exc}")
                raise
            reason = await self._acknowledged(producer, futures, deadline)
        failures = [_failure(f, reason) for f in futures]
        failure = next((f for f in failures if f is not None), None)
        if failure is not None:
            if breaks_producer(failure):
                await self._retire(producer, f"a send failed with {type(failure).__name__}: {failure}")
            raise failure

    async def _acknowledged(self, producer: AIOKafkaProducer, futures: list, deadline: float) -> str:
        """Wait for every acknowledgement (asyncio.wait: a future given up on is not cancelled),
        until the deadline or until the broker's port refuses connections; then the producer is
        retired and what it had on the wire settled, so every future is resolved either way.
        Returns why it was given up on, if it was."""
        pending = set(futures)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                reason = f"no acknowledgement within {self._send_seconds:.0f}s"
                await self._retire(producer, reason)
                return reason
            _, pending = await asyncio.wait(pending, timeout=min(CHECK_SECONDS, left))
            if pending and not await self._port_answers():
                reason = "the broker refuses connections"
                await self._retire(producer, reason)
                return reason
        return ""

    async def _port_answers(self) -> bool:
        checked_at, answered = self._port_checked
        if time.monotonic() - checked_at < CHECK_SECONDS:
            return answered
        if self._port_check is None or self._port_check.done():
            self._port_check = asyncio.create_task(broker_answers(self._bootstrap, timeout=CHECK_SECONDS))
        answered = await asyncio.shield(self._port_check)
        self._port_checked = (time.monotonic(), answered)
        return answered

    async def _retire(self, producer: AIOKafkaProducer, reason: str) -> None:
        """Stop using ``producer`` (once, however many sends fail with it), start replacing it,
        and wait until what it had on the wire has come back: each of its messages is then
        either acknowledged or failed, and none is written later behind the caller's back."""
        if producer is self._producer:
            self._producer = None
            log.warning("%s; sends fail at once (503 at intake) until a fresh producer is connected",
                        self._outage.failed(time.monotonic(), reason))
            settling = asyncio.create_task(_settle(producer), name="settle replaced kafka producer")
            self._settling = (producer, settling)
            self._replacing = asyncio.create_task(self._replace(settling), name="replace kafka producer")
        if self._settling is not None and self._settling[0] is producer:
            await asyncio.shield(self._settling[1])

    async def _replace(self, settling: asyncio.Task) -> None:
        with contextlib.suppress(Exception):
            await settling  # the old producer's last requests are answered before a new one sends
        while not self._stopping:
            fresh = self._new()
            try:
                async with asyncio.timeout(START_SECONDS):
                    await fresh.start()
            except (KafkaError, OSError, TimeoutError) as exc:
                await _settle(fresh)
                line = self._outage.failed(time.monotonic(), f"a fresh producer did not start: {exc!r}")
                if line:
                    log.warning(line)
                await asyncio.sleep(RETRY_SECONDS)  # back-off between attempts, not a wait for a condition
                continue
            self._producer = fresh
            log.info(self._outage.recovered(time.monotonic(), "a fresh idempotent producer sends again"))
            return

    def _outage_seconds(self) -> float:
        return time.monotonic() - self._outage.since if self._outage.since is not None else 0.0

    async def connected(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        try:
            await producer.client.fetch_all_metadata()
        except Exception:  # noqa: BLE001 - readiness only reports yes/no
            return False
        return True


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _failure(future: asyncio.Future, given_up: str) -> BaseException | None:
    """Why a message was not stored (None: it was); a send given up on says why it was."""
    failure = None if future.done() and not future.cancelled() and future.exception() is None else (
        future.exception() if future.done() and not future.cancelled() else BrokerUnavailable())
    if isinstance(failure, BrokerUnavailable):
        return BrokerUnavailable(f"not stored: {given_up or 'the producer was replaced'}; retry")
    return failure


class _ForgivingSet(set):
    def remove(self, item) -> None:
        self.discard(item)


async def _settle(producer: AIOKafkaProducer) -> None:
    """Send nothing more with a producer: let what it has on the wire come back (written or
    refused, as its futures then say), fail everything it still holds, close it. aiokafka's
    stop() would instead wait to deliver everything, and has no way to drop what is queued:
    this reaches into aiokafka 0.14's sender and accumulator (the version is pinned)."""
    task = producer._sender.sender_task  # noqa: SLF001
    if task is not None and not task.done():
        task.cancel()  # a cancelled sender waits for its requests in flight and sends nothing new
        await asyncio.wait({task}, timeout=SETTLE_SECONDS)
    accumulator = producer._message_accumulator  # noqa: SLF001
    # A batch sent again after an error is already out of this set; failing it would make
    # aiokafka's own callback raise KeyError (a traceback in the log per batch).
    accumulator._pending_batches = _ForgivingSet(accumulator._pending_batches)  # noqa: SLF001
    accumulator.fail_all(BrokerUnavailable("the producer was replaced"))
    producer._closed = True  # noqa: SLF001 - closed here; no "unclosed producer" warning later
    with contextlib.suppress(Exception):
        await producer.client.close()  # a request still unanswered (a hung broker) fails with its connection
    if task is not None and not task.done():
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, SETTLE_SECONDS)
