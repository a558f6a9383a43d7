"""Metric definitions: what mttr_minutes, reopen_rate and postmortem_completion_rate mean.

Detection is the first alert's start (its ``startsAt``, or when we received it; a
declared incident's declaration time). Resolution is the latest time the incident
became resolved. The window is trailing (``metrics_window``, default 30 days).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from pydantic import BaseModel

from .incident import Incident


class IncidentFacts(BaseModel):
    """What the metrics service keeps per incident (folded from audit events)."""

    incident_id: str
    severity: str
    service: str
    team: str
    status: str
    detected_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None = None
    first_resolved_at: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    mttr_breached: bool = False
    postmortem_required: bool = False
    postmortem_status: str | None = None
    postmortem_created_at: datetime | None = None
    postmortem_due_at: datetime | None = None
    last_version: int = 0


def fold(previous: IncidentFacts | None, incident: Incident) -> IncidentFacts:
    first_resolved = previous.first_resolved_at if previous else None
    if first_resolved is None and incident.resolved_at is not None:
        first_resolved = incident.resolved_at
    acknowledged = previous.acknowledged_at if previous and previous.acknowledged_at else incident.acknowledged_at
    postmortem = incident.postmortem
    return IncidentFacts(
        incident_id=incident.incident_id,
        severity=incident.severity.value,
        service=incident.service,
        team=incident.team,
        status=incident.status.value,
        detected_at=incident.detected_at,
        opened_at=incident.opened_at,
        acknowledged_at=acknowledged,
        first_resolved_at=first_resolved,
        resolved_at=incident.resolved_at,
        reopen_count=incident.reopen_count,
        mttr_breached=incident.mttr_breached,
        postmortem_required=bool(postmortem and postmortem.required),
        postmortem_status=postmortem.status if postmortem else None,
        postmortem_created_at=postmortem.created_at if postmortem else None,
        postmortem_due_at=postmortem.due_at if postmortem else None,
        last_version=incident.version,
    )


def _is_resolved(facts: IncidentFacts) -> bool:
    return facts.status in ("resolved", "closed") and facts.resolved_at is not None


def mttr_minutes(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (mean minutes from detection to resolution, incidents counted).

    Counted: incidents currently resolved or closed whose latest resolution lies in the window.
    """
    sums: dict[str, list[float]] = {}
    for f in facts:
        if _is_resolved(f) and f.resolved_at >= now - window:
            sums.setdefault(f.severity, []).append((f.resolved_at - f.detected_at).total_seconds() / 60.0)
    return {sev: (sum(values) / len(values), len(values)) for sev, values in sums.items()}


def reopen_rate(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (share reopened, incidents counted).

    Counted: incidents first resolved in the window; reopened: those reopened at least once since.
    """
    counts: dict[str, list[int]] = {}
    for f in facts:
        if f.first_resolved_at is not None and f.first_resolved_at >= now - window:
            bucket = counts.setdefault(f.severity, [0, 0])
            bucket[1] += 1
            bucket[0] += 1 if f.reopen_count > 0 else 0
    return {sev: (reopened / total, total) for sev, (reopened, total) in counts.items()}


@dataclass(frozen=True)
class PostmortemStats:
    required: int  # required postmortems created in the window
    completed: int  # of those, completed
    due: int  # of those, completed or past their due date
    overdue: int  # past due and not completed

    @property
    def completion_rate(self) -> float:
        """Completed / (completed + overdue); 1.0 while nothing is due (nothing missed yet)."""
        return self.completed / self.due if self.due else 1.0


def postmortem_stats(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> PostmortemStats:
    required = completed = due = overdue = 0
    for f in facts:
        if not f.postmortem_required or f.postmortem_created_at is None or f.postmortem_created_at < now - window:
            continue
        required += 1
        done = f.postmortem_status == "completed"
        late = not done and f.postmortem_due_at is not None and f.postmortem_due_at <= now
        completed += done
        overdue += late
        due += done or late
    return PostmortemStats(required=required, completed=completed, due=due, overdue=overdue)


def time_to_acknowledge(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (mean minutes from opening to first acknowledgement, incidents counted in the window)."""
    sums: dict[str, list[float]] = {}
    for f in facts:
        if f.acknowledged_at is not None and f.acknowledged_at >= now - window:
            sums.setdefault(f.severity, []).append((f.acknowledged_at - f.opened_at).total_seconds() / 60.0)
    return {sev: (sum(v) / len(v), len(v)) for sev, v in sums.items()}


def open_incidents(facts: Iterable[IncidentFacts]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in facts:
        if f.status in ("triggered", "acknowledged", "mitigating"):
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


# Counters bumped by events: (metric, labels) per audit change.
def counter_increments(change: str, incident: Incident) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    sev = ("severity", incident.severity.value)
    team = ("team", incident.team)
    table = {
        "opened": [("incidents_opened_total", (sev, ("service", incident.service)))],
        "acknowledged": [("incidents_acknowledged_total", (sev,))],
        "reopened": [("incidents_reopened_total", (sev,))],
        "resolved": [("incidents_resolved_total", (sev,))],
        "closed": [("incidents_closed_total", (sev,))],
        "escalated": [("escalations_total", (team,))],
        "escalation_failed": [("escalation_failures_total", (team,))],
        "mttr_target_breached": [("mttr_target_breaches_total", (sev,))],
        "alert_attached": [("alerts_deduplicated_total", (("service", incident.service),))],
        "postmortem_overdue": [("postmortem_reminders_total", (team,))],
    }
    return table.get(change, [])
