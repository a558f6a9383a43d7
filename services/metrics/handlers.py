"""The metrics service's folds: one source message becomes one table record, or nothing.

Each fold returns the record's new value (a JSON-ready dict) or None when the message
changes nothing: already counted (redelivered), or not something a metric counts. A
counted message and the mark that it was counted live in the same record, so a single
changelog write does both and a restart or redelivery can never count it twice.

- incident.audit -> ``incident_facts[incident id]``: deduplicated by the event's version.
- incident.communications -> ``notification_log[incident id]``: by the record id (the
  communications table's primary key, so the counts match PostgreSQL's rows).
- alerts.intake and dead-letter -> ``partition_counts[topic:partition]``: by offset (these
  messages carry no id of their own).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ValidationError

from shared import catalogue as cat
from shared.domain import metrics as defs
from shared.domain.incident import Incident
from shared.messages import (
    AuditEvent, AuditHead, CommunicationRecord, DeadLetter, HeartbeatPing, NativeAlert, Origin,
)

# Dead letters from these topics are alerts the platform could not process.
ALERT_PATH = (cat.ALERTS_INTAKE.name, cat.TRIAGE_ALERTS.name, cat.TRIAGE_CORRELATION.name)
_NOTIFICATION_COUNTERS = {
    "sent": "notifications_sent_total",
    "failed": "notifications_failed_total",
    "dead_lettered": "notifications_failed_total",
}


class NotificationLog(BaseModel):
    """Per incident: each communication record counted, by id, with the counter it bumped."""

    counted: dict[str, str] = {}


class PartitionCounts(BaseModel):
    """Per source partition: the last offset counted and the counter increments so far."""

    offset: int = -1
    counts: dict[str, int] = {}


def fold_audit(previous: dict | None, message: AuditEvent) -> dict | None:
    before = defs.IncidentFacts.model_validate(previous) if previous else None
    after = defs.apply_audit(before, message.version, message.change, Incident.model_validate(message.incident),
                             firing=int(message.data.get("firing", 0)))
    return after.model_dump(mode="json") if after is not None else None


def fold_alert(previous: dict, head: AuditHead) -> dict | None:
    before = defs.IncidentFacts.model_validate(previous)
    after = defs.apply_alert(before, head.version, head.change, head.incident.service, head.data.firing,
                             restricted=head.incident.restricted)
    return after.model_dump(mode="json") if after is not None else None


def fold_communication(previous: dict | None, record: CommunicationRecord) -> dict | None:
    log = NotificationLog.model_validate(previous or {})
    name = _NOTIFICATION_COUNTERS.get(record.status)  # "suppressed" was never sent: not counted
    if name is None or record.record_id in log.counted:
        return None
    channel = record.channel.split(":", 1)[0]  # kafka or webhook: the team is a label already
    key = defs.counter_key(name, (("team", record.team), ("channel", channel)))
    return NotificationLog(counted={**log.counted, record.record_id: key}).model_dump()


def fold_positioned(previous: dict | None, origin: Origin, value: bytes, service: str) -> dict | None:
    state = PartitionCounts.model_validate(previous or {})
    if origin.offset <= state.offset:
        return None
    counts = dict(state.counts)
    for name, labels in _positioned_increments(origin.topic, value, service):
        key = defs.counter_key(name, labels)
        counts[key] = counts.get(key, 0) + 1
    return PartitionCounts(offset=origin.offset, counts=counts).model_dump()


def _positioned_increments(topic: str, value: bytes, service: str) -> list[tuple[str, defs.Labels]]:
    if topic == cat.ALERTS_INTAKE.name:
        try:
            integration = NativeAlert.model_validate_json(value).integration or "kafka"
        except ValidationError:
            integration = "unparseable"  # still received; triage dead-letters it (counted as rejected)
        return [("alerts_received_total", (("integration", integration),))]
    if topic == cat.DEAD_LETTER.name:
        try:
            letter = DeadLetter.model_validate_json(value)
        except ValidationError:
            return []
        # Our own dead letters are not rejections by the platform's alert path.
        if letter.source_topic in ALERT_PATH and letter.service != service:
            return [("alerts_rejected_total", (("reason", letter.reason.split(":", 1)[0]),))]
    return []


def notification_counts(logs: Iterable[dict]) -> Iterable[dict[str, int]]:
    for value in logs:
        counts: dict[str, int] = {}
        for key in NotificationLog.model_validate(value).counted.values():
            counts[key] = counts.get(key, 0) + 1
        yield counts


def fold_ping(previous: dict | None, ping: HeartbeatPing) -> dict | None:
    """The latest ping of a heartbeat (None when this one is not newer: nothing to write)."""
    if previous is not None and datetime.fromisoformat(previous["at"]) >= ping.at:
        return None
    return {"at": ping.at.isoformat()}
