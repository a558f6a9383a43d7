"""Triage's logic around the domain: routing alerts to incidents and applying commands.

The Faust agents in app.py decode, call these functions and publish what they
return; everything here is plain data in, data out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from shared.audit import audit_event
from shared.domain.alerts import Alert, AlertAction, AlertStatus, correlation_key
from shared.domain.commands import AttachAlerts, OpenIncident
from shared.domain.events import evolve
from shared.domain.incident import Incident, IncidentStatus
from shared.domain.lifecycle import Context, NotFound, Rejected, decide, within_reopen_window
from shared.domain.organisation import Organisation
from shared.messages import AuditEvent, CommandEnvelope, CommandResult, CorrelateAlert, IncidentLink, Origin

RECENT_COMMANDS = 64
UNKNOWN_SERVICE = "unknown"


class CorrelationRecord(BaseModel):
    """The correlation table's value: which incident a correlation key currently feeds."""

    incident_id: str | None = None
    status: IncidentStatus | None = None
    resolved_at: datetime | None = None
    version: int = 0
    positions: dict[str, int] = {}  # the highest position applied, per source stream
    # The fingerprints of the incident the key feeds, and how many of them fire now.
    distinct: int = 0
    firing: int = 0


class FingerprintRecord(BaseModel):
    """The fingerprint table's value: where this fingerprint's alerts are correlated."""

    correlation_key: str
    service: str
    alert_name: str
    positions: dict[str, int] = {}  # the highest position forwarded, per source stream


def correlation_for(record: FingerprintRecord | None, alert: Alert, org: Organisation) -> tuple[str, Alert]:
    """The correlation key for an alert, and the alert completed from what its first firing said.

    A PagerDuty acknowledge or resolve may carry only its dedup key: it must still
    reach the incident the trigger opened, so it follows the recorded key.
    """
    follows_trigger = alert.status is AlertStatus.RESOLVED or alert.action is AlertAction.ACKNOWLEDGE
    if record is not None and follows_trigger:
        completed = alert
        if alert.service == UNKNOWN_SERVICE:
            completed = alert.model_copy(
                update={"service": record.service, "alert_name": alert.alert_name or record.alert_name}
            )
        return record.correlation_key, completed
    return correlation_key(alert, org), alert


class IncidentRecord(BaseModel):
    """The incident table's value: the state plus what was already applied (for redelivery)."""

    incident: Incident | None = None
    applied_offset: int = -1
    positions: dict[str, int] = {}
    recent_commands: list[str] = []
    # The hash of the incident's last audit event: the next one's prev_hash (audit_chain.py).
    audit_head: str | None = None


def applied_at(record: IncidentRecord, command_timestamp: datetime) -> datetime:
    """When a command counts as applied: the time its message was written to the broker,
    never before the incident's last change. Taken from the message, not the clock, so a
    command delivered again after a crash makes the same events, hashes included: the audit
    chain cannot fork on a redelivery."""
    last = record.incident.updated_at if record.incident is not None else None
    return max(command_timestamp, last) if last is not None else command_timestamp


def seen(positions: dict[str, int], origin: Origin) -> bool:
    return positions.get(origin.stream, -1) >= origin.offset


def remember(positions: dict[str, int], origin: Origin) -> dict[str, int]:
    return {**positions, origin.stream: max(origin.offset, positions.get(origin.stream, -1))}


@dataclass(frozen=True)
class Attach:
    incident_id: str


@dataclass(frozen=True)
class OpenNew:
    previous_incident_id: str | None


@dataclass(frozen=True)
class Drop:
    reason: str


def route_alert(record: CorrelationRecord, message: CorrelateAlert, org: Organisation, now: datetime):
    """Where an alert goes: an existing incident, a new one, or nowhere (with the reason)."""
    alert = message.alert
    if record.incident_id is None:
        if alert.status is AlertStatus.RESOLVED:
            return Drop("resolved alert for no known incident")
        if alert.action.value == "acknowledge":
            return Drop("acknowledge for no known incident")
        return OpenNew(previous_incident_id=None)
    if record.status is None or record.status.is_open:
        return Attach(record.incident_id)
    if alert.status is AlertStatus.RESOLVED or alert.action.value == "acknowledge":
        return Attach(record.incident_id)  # recorded on the incident, changes no status
    if within_reopen_window(record.resolved_at, now, org.reopen_window):
        return Attach(record.incident_id)  # recurrence: the incident reopens
    return OpenNew(previous_incident_id=record.incident_id)


def open_command(message: CorrelateAlert, incident_id: str, previous: str | None) -> CommandEnvelope:
    return CommandEnvelope(
        command_id=f"open:{message.origin.stream}:{message.origin.offset}",
        incident_id=incident_id,
        actor=f"monitoring:{message.alert.integration}",
        issued_at=message.alert.received_at,
        origin=message.origin,
        command=OpenIncident(
            incident_id=incident_id,
            correlation_key=message.correlation_key,
            alert=message.alert,
            fingerprint=message.fingerprint,
            previous_incident_id=previous,
        ),
    )


def apply_link(record: CorrelationRecord, link: IncidentLink) -> CorrelationRecord:
    """Follow the incident the key feeds; news about an older incident changes nothing."""
    if record.incident_id not in (None, link.incident_id) or link.version <= record.version:
        return record
    return record.model_copy(
        update={
            "incident_id": link.incident_id,
            "status": link.status,
            "resolved_at": link.resolved_at,
            "version": link.version,
        }
    )


@dataclass
class Outcome:
    record: IncidentRecord
    events: list[AuditEvent] = field(default_factory=list)
    result: CommandResult | None = None
    link: IncidentLink | None = None
    duplicate: bool = False


def unapplied(record: IncidentRecord, command: AttachAlerts) -> tuple[AttachAlerts | None, dict[str, int]]:
    """The part of a folded command not applied yet (None: all of it was), and the positions
    after it. A correlator that restarted folds its batches again, cut differently."""
    fresh = [origin for origin in command.origins if record.positions.get(origin.stream, -1) < origin.offset]
    positions = dict(record.positions)
    for origin in fresh:
        positions[origin.stream] = max(origin.offset, positions.get(origin.stream, -1))
    return (command.model_copy(update={"origins": fresh}) if fresh else None), positions


def apply_command(
    record: IncidentRecord, envelope: CommandEnvelope, offset: int, org: Organisation, now: datetime
) -> Outcome:
    """Apply one command from ``incident.commands`` at ``offset``; redelivery is recognised."""
    if offset <= record.applied_offset:
        return Outcome(record=record, duplicate=True)
    bookkeeping: dict = {"applied_offset": offset}
    if isinstance(envelope.command, AttachAlerts):
        command, bookkeeping["positions"] = unapplied(record, envelope.command)
        if command is None:
            return Outcome(record=record.model_copy(update=bookkeeping), duplicate=True)
        envelope = envelope.model_copy(update={"command": command})
    elif envelope.origin is not None and seen(record.positions, envelope.origin):
        return Outcome(record=record.model_copy(update=bookkeeping), duplicate=True)
    elif envelope.origin is None and envelope.command_id in record.recent_commands:
        return Outcome(record=record.model_copy(update=bookkeeping), duplicate=True)

    if envelope.origin is not None:
        bookkeeping["positions"] = remember(record.positions, envelope.origin)
    elif not isinstance(envelope.command, AttachAlerts):
        bookkeeping["recent_commands"] = [*record.recent_commands, envelope.command_id][-RECENT_COMMANDS:]

    state = record.incident
    ctx = Context(now=now, org=org, actor=envelope.actor)
    try:
        if envelope.unrestricted_only and state is not None and state.restricted:
            raise NotFound(f"no incident {envelope.incident_id}")
        changes = decide(state, envelope.command, ctx)
    except (Rejected, NotFound) as exc:
        outcome = "not_found" if isinstance(exc, NotFound) else "rejected"
        result = CommandResult(
            command_id=envelope.command_id,
            incident_id=envelope.incident_id,
            outcome=outcome,
            reason=str(exc),
            version=state.version if state else None,
        )
        return Outcome(record=record.model_copy(update=bookkeeping), result=result)

    events: list[AuditEvent] = []
    head = record.audit_head
    for change in changes:
        state = evolve(state, change)
        events.append(audit_event(change, state, envelope.command_id, head))
        head = events[-1].hash
    result = CommandResult(
        command_id=envelope.command_id,
        incident_id=envelope.incident_id,
        outcome="applied",
        version=state.version if state else None,
        event_ids=[e.event_id for e in events],
    )
    link = None
    before = record.incident
    if state is not None and (before is None or before.status != state.status):
        link = IncidentLink(
            correlation_key=state.correlation_key,
            incident_id=state.incident_id,
            status=state.status,
            resolved_at=state.resolved_at,
            version=state.version,
        )
    return Outcome(
        record=record.model_copy(update={**bookkeeping, "incident": state, "audit_head": head}),
        events=events,
        result=result,
        link=link,
    )
