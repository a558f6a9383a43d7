"""Decoding stream events, and sending what cannot be processed to the dead-letter topic."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed
from faust.exceptions import PartitionsMismatch
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..db.unavailable import unavailable
from ..messages import DeadLetter, Origin
from .json_producer import encode
from .liveness import DEPENDENCY_WAITS, STALLS

log = logging.getLogger(__name__)
M = TypeVar("M")


def origin_of(event) -> Origin:
    message = event.message
    return Origin(topic=message.topic, partition=message.partition, offset=message.offset)


def written_at(event) -> datetime:
    """When the event's message was written to the broker (its record timestamp): the same
    on every delivery, unlike the clock. The clock only for a record without one."""
    stamp = getattr(event.message, "timestamp", None)
    if not stamp or stamp <= 0:
        return datetime.now(timezone.utc)
    return datetime.fromtimestamp(stamp, timezone.utc)


def key_of(event) -> str:
    key = event.key
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return str(key) if key is not None else ""


def describe_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(value)'}: {err['msg']}" for err in exc.errors()[:5]
        )
    return f"{type(exc).__name__}: {exc}"


async def dead_letter(dead_letter_topic, event, reason: str, service: str) -> None:
    value = event.value
    payload = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
    message = event.message
    record = DeadLetter(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=key_of(event),
        reason=reason,
        payload=payload[:100_000],
        service=service,
        failed_at=datetime.now(timezone.utc),
    )
    log.warning("dead-lettered %s[%s]@%s: %s", message.topic, message.partition, message.offset, reason)
    await dead_letter_topic.send(key=record.key.encode("utf-8") if record.key else None, value=encode(record))


async def decode(event, model: type[M] | TypeAdapter, dead_letter_topic, service: str) -> M | None:
    """The event's value as ``model``, or None after dead-lettering it with the reason."""
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        return adapter.validate_json(event.value)
    except (ValidationError, ValueError, TypeError) as exc:
        await dead_letter(dead_letter_topic, event, f"invalid message: {describe_error(exc)}", service)
        return None


def send_model(topic, key: str, message: BaseModel):
    return topic.send(key=key.encode("utf-8"), value=encode(message))


def transient(exc: BaseException) -> bool:
    """A failure of a dependency (broker, database) rather than of the message: retry, never dead-letter.

    The database's side is shared/db/unavailable.py's rule: a restarting PostgreSQL answers
    CannotConnectNowError and AdminShutdownError, which are not connection errors to asyncpg,
    and an alert whose incident id could not be allocated then must wait, not be dead-lettered.
    """
    if isinstance(exc, (PartitionsMismatch, OSError, ConnectionError)) or unavailable(exc):
        return True
    if isinstance(exc, KafkaError):
        # aiokafka calls a send that timed out in its buffer "not retriable"; for an agent it
        # is the broker being slow, and the message must not be dead-lettered for it.
        return exc.retriable or isinstance(exc, (KafkaTimeoutError, ProducerClosed))
    return False


async def process(event, handle, dead_letter_topic, service: str, retry_seconds: float = 1.0) -> None:
    """Run ``handle(event)``; retry while a dependency is away, dead-letter a message that fails.

    An exception must never crash the agent: Faust would acknowledge the message
    and it would be lost without a trace.
    """
    while True:
        try:
            await handle(event)
            return
        except Exception as exc:  # noqa: BLE001 - everything else is poison for this message
            if transient(exc):
                log.warning("%s: dependency unavailable (%s); retrying", service, exc)
                with DEPENDENCY_WAITS.watch(f"retrying after {type(exc).__name__}"):
                    await asyncio.sleep(retry_seconds)
                continue
            log.exception("%s: failed to process a message", service)
            if event.message.topic == dead_letter_topic.get_topic_name():
                return  # never dead-letter a dead letter: that would loop forever
            await dead_letter(dead_letter_topic, event, f"processing failed: {describe_error(exc)}", service)
            return


class Outbox:
    """Messages an agent sends for one event, confirmed by the broker before its table is written.

    Output first, state second: a crash in between re-sends the output on redelivery
    (consumers recognise it), whereas state written first could mark an event handled
    whose output was never delivered, and that output would be lost.
    """

    def __init__(self) -> None:
        self._pending: list = []

    async def send(self, topic, key: str, message: BaseModel) -> None:
        self._pending.append(await send_model(topic, key, message))

    async def confirm(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            with STALLS.watch("producer confirmation of an agent's output"):
                await asyncio.gather(*pending)
