"""The recorder's loop: fetch a batch, write it in one transaction, dead-letter what is refused, commit.

Offsets are committed only after the batch's rows are in and its dead letters are
acknowledged by the broker: a crash anywhere before that reads the batch again, and
the writes are idempotent (at-least-once, nothing lost, nothing doubled).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from pydantic import ValidationError

from shared import catalogue as cat
from shared.db.records import RecordedEvent
from shared.kafka.json_producer import JsonProducer
from shared.kafka.liveness import STALLS
from shared.kafka.probes import Probes
from shared.kafka.streams import describe_error
from shared.messages import (
    AuditEvent, CommandResult, CommunicationRecord, DeadLetter, MaintenanceWindow, Probe, RotationOverride,
)

from .writer import BatchWriter

log = logging.getLogger("recorder")

SERVICE = "recorder"
BATCH_RECORDS = 2000  # per fetch: one transaction each

_PARSERS = {
    cat.INCIDENT_AUDIT.name: lambda raw: RecordedEvent.parse(AuditEvent.model_validate_json(raw)),
    cat.COMMAND_RESULTS.name: CommandResult.model_validate_json,
    cat.COMMUNICATIONS.name: CommunicationRecord.model_validate_json,
    cat.ONCALL_OVERRIDES.name: RotationOverride.model_validate_json,
    cat.MAINTENANCE_WINDOWS.name: MaintenanceWindow.model_validate_json,
}


def without_nul(raw: bytes) -> bytes:
    """PostgreSQL text cannot hold NUL: keep the record, with U+FFFD where a NUL was.

    JSON carries NUL only as the escape \\u0000, so the bytes can be mended unparsed.
    """
    return raw.replace(b"\\u0000", b"\\ufffd") if b"\\u0000" in raw else raw


def consumer_for(bootstrap: str, group: str, worker: int = 0) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *_PARSERS,
        cat.HEALTH_PROBES.name,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-consumer" if worker == 0 else f"{group}-{worker}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH_RECORDS,
        # As the Faust services: a restarted recorder gets its partitions back within seconds.
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )


class RecorderLoop:
    def __init__(self, consumer: AIOKafkaConsumer, writer: BatchWriter, producer: JsonProducer, probes: Probes) -> None:
        self.consumer = consumer
        self.writer = writer
        self.producer = producer
        self.probes = probes
        self.batches = 0

    def probe_partitions(self) -> list[int]:
        return [tp.partition for tp in self.consumer.assignment() if tp.topic == cat.HEALTH_PROBES.name]

    async def run(self) -> None:
        """Forever; an unexpected error propagates (and ends the process, for its supervisor to restart)."""
        while True:
            fetched = await self.consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
            if not fetched:
                continue
            records = []
            for partition_records in fetched.values():
                for record in partition_records:
                    if record.topic == cat.HEALTH_PROBES.name:
                        self._probe_seen(record)
                    else:
                        records.append(record)
            if records:
                await self.write(records)
            await self._commit()
            self.batches += 1

    async def write(self, records: list) -> None:
        items, refused = [], []
        for record in records:
            try:
                items.append((record, _PARSERS[record.topic](without_nul(record.value or b""))))
            except (ValidationError, ValueError, KeyError, TypeError) as exc:
                refused.append((record, f"invalid message: {describe_error(exc)}"))
        if items:
            refused.extend(await self.writer.write(items))
        for record, reason in refused:
            await self._dead_letter(record, reason)

    async def _commit(self) -> None:
        try:
            with STALLS.watch("recorder offset commit"):
                await self.consumer.commit()
        except (CommitFailedError, RebalanceInProgressError, IllegalStateError) as exc:
            # The group moved partitions while this batch was written: its new owner reads
            # the uncommitted part again, and the writes are idempotent.
            log.warning("offset commit refused (%s); the batch will be read again by its partition's owner", exc)

    def _probe_seen(self, record) -> None:
        try:
            self.probes.seen(Probe.model_validate_json(record.value))
        except (ValidationError, ValueError):
            pass  # not a probe: the probe topic carries nothing else worth keeping

    async def _dead_letter(self, record, reason: str) -> None:
        log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
        key = record.key.decode("utf-8", errors="replace") if record.key else ""
        await self.producer.send(
            cat.DEAD_LETTER.name,
            key,
            DeadLetter(
                source_topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=key,
                reason=reason,
                payload=(record.value or b"").decode("utf-8", errors="replace")[:100_000],
                service=SERVICE,
                failed_at=datetime.now(timezone.utc),
            ),
        )
