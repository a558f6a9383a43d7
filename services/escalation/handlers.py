"""Escalation and reminder deadlines, kept as data per incident.

``on_audit`` follows the incident's life and sets deadlines; ``on_check`` (after a
timer nudge) acts on the deadlines that are due. Both return commands for triage,
which records each step and so drives the notifications.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, computed_field

from shared.domain import escalation as policy
from shared.domain.commands import MarkEscalationFailed, RecordEscalation, SendReminder
from shared.domain.incident import Incident
from shared.domain.maintenance import MaintenanceWindow
from shared.domain.organisation import Organisation
from shared.messages import AuditEvent, CommandEnvelope, Origin

from . import maintenance_hold
from .maintenance_hold import Held

# Changes that end the need to page: somebody is on it, or there is nothing left to do.
STOPS_ESCALATION = ("acknowledged", "mitigation_added", "resolved", "closed")
# Changes that (re)start the status-update clock.
RESETS_UPDATE_CLOCK = ("opened", "reopened", "update_posted", "severity_changed")


class Deadlines(BaseModel):
    """The escalation table's value for one incident."""

    last_version: int = 0
    escalation: policy.Escalation | None = None
    update_due: datetime | None = None
    update_every: float | None = None  # seconds between status updates (the severity's cadence)
    mttr_due: datetime | None = None
    # Once breached, an incident's MTTR target is not reported again (a reopen does not re-arm it).
    mttr_reported: bool = False
    postmortem_due: datetime | None = None
    # Paging held by a maintenance window (no escalation runs meanwhile).
    held: Held | None = None

    @computed_field  # stored with the value, so the timer reads it without parsing the record
    @property
    def next_due(self) -> datetime | None:
        candidates = [self.update_due, self.mttr_due, self.postmortem_due, self.held.until if self.held else None]
        if self.escalation is not None and self.escalation.status == "active":
            candidates.append(self.escalation.deadline)
        due = [moment for moment in candidates if moment is not None]
        return min(due) if due else None


def cadence_for(org: Organisation, incident: Incident) -> timedelta | None:
    """How often the commander owes a status update: the service's override, else the severity's."""
    service = org.services.get(incident.service)
    cadence = service.update_cadence.get(incident.severity) if service is not None else None
    cadence = cadence or org.update_cadence.get(incident.severity)
    return cadence if cadence is not None and cadence > timedelta(0) else None


def _mttr_due(incident: Incident) -> datetime | None:
    # The target frozen on the incident (set at opening and by a severity change), so the
    # deadline and the breach event that triage records always agree.
    if incident.mttr_target_minutes is None or incident.mttr_breached:
        return None
    return incident.detected_at + timedelta(minutes=incident.mttr_target_minutes)


def _envelope(incident_id: str, command, origin: Origin, index: int, now: datetime) -> CommandEnvelope:
    # The origin makes the command idempotent in triage: a redelivered audit event or
    # deadline check derives the same (topic, partition, offset, index) again.
    return CommandEnvelope(
        command_id=f"escalation:{origin.stream}:{origin.offset}:{index}",
        incident_id=incident_id,
        actor="escalation",
        issued_at=now,
        origin=origin.model_copy(update={"index": index}),
        command=command,
    )


def _page(state: policy.Escalation, page: policy.Page, org: Organisation, now: datetime) -> RecordEscalation:
    level = state.plan.levels[page.level]
    targets = [policy.resolve_target(t, org, state.team, state.plan.rotation, now) for t in level.targets]
    return RecordEscalation(round=page.round, level=page.level, targets=targets, timeout_seconds=page.timeout.total_seconds())


def _escalation(record: Deadlines, incident: Incident, change: str, org: Organisation, now: datetime, commands: list):
    escalation = record.escalation
    if change in ("opened", "reopened"):
        if incident.escalation is None or incident.status.value != "triggered":
            return None
        escalation, page = policy.start(incident.incident_id, incident.team, incident.escalation,
                                        incident.reopen_count, now)
        commands.append(_page(escalation, page, org, now))
        return escalation
    if escalation is None:
        return None
    if change in STOPS_ESCALATION:
        return policy.stop(escalation)
    if change == "escalation_failed" and escalation.status == "active":
        return escalation.model_copy(update={"status": "failed"})
    return escalation


def on_audit(
    record: Deadlines, event: AuditEvent, org: Organisation, origin: Origin, now: datetime,
    windows: list[MaintenanceWindow] = (),
) -> tuple[Deadlines, list[CommandEnvelope]]:
    if event.version <= record.last_version:
        return record, []
    incident = Incident.model_validate(event.incident)
    change = event.change
    commands: list = []
    update: dict = {"last_version": event.version}
    holding = maintenance_hold.hold(incident, event, list(windows))
    if holding is not None:  # opened in a maintenance window: marked, and nobody paged until it ends
        update["held"], mark = holding
        commands.append(mark)
    else:
        update["escalation"] = _escalation(record, incident, change, org, now, commands)
        if change in STOPS_ESCALATION or change in ("opened", "reopened"):
            update["held"] = None

    if incident.status.is_open:
        cadence = cadence_for(org, incident)
        if change in RESETS_UPDATE_CLOCK or record.update_due is None:
            base = now if change in ("opened", "reopened") else (incident.last_update_at or incident.opened_at)
            update["update_due"] = base + cadence if cadence is not None else None
            update["update_every"] = cadence.total_seconds() if cadence is not None else None
        if change == "mttr_target_breached":
            update["mttr_due"], update["mttr_reported"] = None, True
        elif change in ("opened", "reopened", "severity_changed"):
            update["mttr_due"] = None if record.mttr_reported else _mttr_due(incident)
    else:
        update["update_due"] = None
        update["mttr_due"] = None

    postmortem = incident.postmortem
    if postmortem is None or postmortem.status == "completed":
        update["postmortem_due"] = None
    elif change == "postmortem_created" or record.postmortem_due is None:
        update["postmortem_due"] = postmortem.due_at

    envelopes = [_envelope(incident.incident_id, command, origin, i, now) for i, command in enumerate(commands)]
    return record.model_copy(update=update), envelopes


def on_check(
    record: Deadlines, incident_id: str, org: Organisation, origin: Origin, now: datetime,
    windows: list[MaintenanceWindow] = (),
) -> tuple[Deadlines, list[CommandEnvelope]]:
    update: dict = {}
    commands: list = []
    escalation = record.escalation
    if record.held is not None:
        held = maintenance_hold.recheck(record.held, list(windows), now)
        update["held"] = held
        if held is None:  # the window is over and the incident still triggered: page as if it just opened
            escalation, page = policy.start(incident_id, record.held.team, record.held.plan, record.held.generation,
                                            now)
            commands.append(_page(escalation, page, org, now))
            update["escalation"] = escalation
            escalation = None  # started now: its first deadline is ahead
    if escalation is not None:
        advanced, step = policy.on_deadline(escalation, now)
        if isinstance(step, policy.Page):
            commands.append(_page(advanced, step, org, now))
        elif isinstance(step, policy.Exhausted):
            commands.append(MarkEscalationFailed(round=step.round, fallback_team=org.fallback_team))
        update["escalation"] = advanced
    if record.update_due is not None and record.update_due <= now:
        commands.append(SendReminder(reminder="update_due", due_at=record.update_due.isoformat()))
        every = record.update_every
        # Repeats every cadence while no update is posted (the notification side backs off).
        update["update_due"] = now + timedelta(seconds=every) if every else None
    if record.mttr_due is not None and record.mttr_due <= now:
        commands.append(SendReminder(reminder="mttr_target_breached", due_at=record.mttr_due.isoformat()))
        update["mttr_due"] = None
    if record.postmortem_due is not None and record.postmortem_due <= now:
        commands.append(SendReminder(reminder="postmortem_overdue", due_at=record.postmortem_due.isoformat()))
        update["postmortem_due"] = now + org.postmortem.reminder_interval
    envelopes = [_envelope(incident_id, command, origin, i, now) for i, command in enumerate(commands)]
    return record.model_copy(update=update), envelopes
