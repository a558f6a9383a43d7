"""An escalation held by a maintenance window: not started while the window lasts, started when it ends.

The rules are the pure domain's (shared/domain/maintenance.py); this keeps what the hold
needs to start the escalation later (the frozen plan, the team, what the windows match).
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from shared.domain import maintenance
from shared.domain.commands import HoldForMaintenance
from shared.domain.incident import EscalationPlan, Incident
from shared.domain.maintenance import MaintenanceWindow, Subject
from shared.messages import AuditEvent


class Held(BaseModel):
    """The escalation table keeps this instead of a running escalation while a window holds the incident."""

    window_id: str
    reason: str
    until: datetime
    service: str
    labels: dict[str, str]
    team: str
    plan: EscalationPlan
    generation: int

    @property
    def subject(self) -> Subject:
        return Subject(self.service, self.labels)


def hold(incident: Incident, event: AuditEvent, windows: list[MaintenanceWindow]) -> tuple[Held, HoldForMaintenance] | None:
    """A hold when this change opens (or reopens by recurrence) the incident inside a window; and the mark for it."""
    if event.change not in ("opened", "reopened") or incident.escalation is None \
            or incident.status.value != "triggered":
        return None
    if not maintenance.holds_opening(event.change, incident.declared, bool(event.data.get("recurrence"))):
        return None
    since = incident.opened_at if event.change == "opened" else event.occurred_at
    subject = Subject(incident.service, incident.labels)
    window = maintenance.covering(windows, subject, since)
    until = maintenance.hold_end(windows, subject, since)
    if window is None or until is None:
        return None
    held = Held(window_id=window.window_id, reason=window.reason, until=until, service=incident.service,
                labels=incident.labels, team=incident.team, plan=incident.escalation, generation=incident.reopen_count)
    return held, HoldForMaintenance(window_id=window.window_id, reason=window.reason, until=until)


def recheck(held: Held, windows: list[MaintenanceWindow], now: datetime) -> Held | None:
    """The hold as it stands at ``now``: longer or shorter if windows changed; None when it is over."""
    until = maintenance.hold_end(windows, held.subject, now)
    if until is None:
        return None
    window = maintenance.covering(windows, held.subject, now)
    assert window is not None
    return held.model_copy(update={"until": until, "window_id": window.window_id, "reason": window.reason})


def due(held: dict, windows: dict[str, MaintenanceWindow]) -> datetime:
    """When the timer should look at a held escalation (its value as stored): its end, or the
    moment its window was deleted or shortened."""
    until = datetime.fromisoformat(held["until"])
    window = windows.get(held["window_id"])
    return min(until, window.effective_end) if window is not None else until
