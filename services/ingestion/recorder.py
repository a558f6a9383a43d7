"""The recorder: writes incident.audit, command results and the communication log to PostgreSQL.

It runs inside the ingestion process because the API reads what it writes; offsets
are committed only after the rows are in, and every write is idempotent.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import asyncpg
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from shared import catalogue as cat
from shared.db import oncall
from shared.db.records import record_communication, record_event, record_result
from shared.kafka.json_producer import JsonProducer
from shared.kafka.liveness import STALLS
from shared.kafka.probes import Probes
from shared.kafka.streams import describe_error
from shared.messages import (
    AuditEvent, CommandResult, CommunicationRecord, DeadLetter, MaintenanceWindow, Probe, RotationOverride,
)

log = logging.getLogger("recorder")

# Each topic the recorder follows: what its values are, and how one is written.
_WRITERS = {
    cat.INCIDENT_AUDIT.name: (AuditEvent, record_event),
    cat.COMMAND_RESULTS.name: (CommandResult, record_result),
    cat.COMMUNICATIONS.name: (CommunicationRecord, record_communication),
    cat.ONCALL_OVERRIDES.name: (RotationOverride, oncall.record_override),
    cat.MAINTENANCE_WINDOWS.name: (MaintenanceWindow, oncall.record_window),
}
_MODELS = {topic: model for topic, (model, _) in _WRITERS.items()}


async def _write(conn: asyncpg.Connection, topic: str, message) -> None:
    await _WRITERS[topic][1](conn, message)


def _without_nul(raw: bytes) -> bytes:
    """PostgreSQL text cannot hold NUL: keep the record, with U+FFFD where a NUL was.

    JSON carries NUL only as the escape \\u0000, so the bytes can be mended unparsed.
    """
    return raw.replace(b"\\u0000", b"\\ufffd") if b"\\u0000" in raw else raw


class Recorder:
    def __init__(self, bootstrap: str, group: str, pool: asyncpg.Pool, producer: JsonProducer, probes: Probes) -> None:
        self.probes = probes
        self._consumer = AIOKafkaConsumer(
            *_MODELS,
            cat.HEALTH_PROBES.name,
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
        )
        self._pool = pool
        self._producer = producer
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._consumer.stop()

    @property
    def healthy(self) -> bool:
        return self._task is not None and not self._task.done()

    def probe_partitions(self) -> list[int]:
        return [tp.partition for tp in self._consumer.assignment() if tp.topic == cat.HEALTH_PROBES.name]

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            records = []
            for partition in batches.values():
                for record in partition:
                    if record.topic == cat.HEALTH_PROBES.name:
                        self._probe_seen(record)
                    else:
                        records.append(record)
            if records:
                await self._write_batch(records)
            if batches:
                with STALLS.watch("recorder offset commit"):
                    await self._consumer.commit()

    def _probe_seen(self, record) -> None:
        try:
            self.probes.seen(Probe.model_validate_json(record.value))
        except (ValidationError, ValueError):
            pass  # not a probe of ours: the probe topic carries nothing else worth keeping

    async def _write_batch(self, records: list) -> None:
        """One transaction per fetched batch (one commit, not one per event); a row
        PostgreSQL refuses rolls back to its own savepoint and is dead-lettered alone."""
        parsed, refused = [], []
        for record in records:
            try:
                parsed.append((record, _MODELS[record.topic].model_validate_json(_without_nul(record.value))))
            except (ValidationError, ValueError) as exc:
                refused.append((record, f"invalid message: {describe_error(exc)}"))
        while True:
            rejected = []
            try:
                async with self._pool.acquire() as conn:
                    async with conn.transaction():
                        for record, message in parsed:
                            try:
                                async with conn.transaction():
                                    await _write(conn, record.topic, message)
                            except asyncpg.PostgresError as exc:
                                if isinstance(exc, asyncpg.PostgresConnectionError):
                                    raise
                                rejected.append((record, f"rejected by PostgreSQL: {exc}"))
                break
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as exc:
                # The database is away: retry the whole batch (writes are idempotent), never skip.
                log.warning("PostgreSQL unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)
        for record, reason in [*refused, *rejected]:
            await self._dead_letter(record, reason)

    async def _dead_letter(self, record, reason: str) -> None:
        log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
        key = record.key.decode("utf-8", errors="replace") if record.key else ""
        await self._producer.send(
            cat.DEAD_LETTER.name,
            key,
            DeadLetter(
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=key,
                reason=reason,
                payload=(record.value or b"").decode("utf-8", errors="replace")[:100_000],
                service="ingestion-recorder",
                failed_at=datetime.now(timezone.utc),
            ),
        )
