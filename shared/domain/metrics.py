"""Metric definitions: what mttr_minutes, reopen_rate, postmortem_completion_rate and the
counters mean, as pure functions over per-incident facts (README.md, "Metrics"
says the same in prose).

Detection is the incident's ``detected_at``: the first alert's ``startsAt`` when the
monitoring system sent one, else when the alert was received; a declared incident's
declaration time. Resolution is the latest time the incident became resolved. The
window is trailing: an instant counts when it lies at or after ``now - window``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from pydantic import BaseModel

from .incident import Incident, minutes_to_resolve
from .visibility import metric_service

Labels = tuple[tuple[str, str], ...]
OPEN_STATUSES = ("triggered", "acknowledged", "mitigating")


class IncidentFacts(BaseModel):
    """What the metrics service keeps per incident, folded from its audit events."""

    incident_id: str
    severity: str
    service: str  # as a label value: ``restricted`` for a restricted incident (visibility.py)
    team: str
    status: str
    restricted: bool = False
    detected_at: datetime
    opened_at: datetime
    first_acknowledged_at: datetime | None = None
    first_resolved_at: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    mttr_target_minutes: float | None = None
    postmortem_required: bool = False
    postmortem_status: str | None = None
    postmortem_created_at: datetime | None = None
    postmortem_due_at: datetime | None = None
    # Counter increments caused by this incident's events (counter_key -> count): kept
    # in the same record as the version, so one table write counts an event exactly once.
    counts: dict[str, int] = {}
    last_version: int = 0


def counter_key(name: str, labels: Labels) -> str:
    # JSON, not a separator: label values (service names from alerts) may contain anything.
    return json.dumps([name, [list(pair) for pair in labels]], separators=(",", ":"))


def parse_counter_key(key: str) -> tuple[str, Labels]:
    name, pairs = json.loads(key)
    return name, tuple((k, v) for k, v in pairs)


def counter_increments(change: str, incident: Incident) -> list[tuple[str, Labels]]:
    """The counters one audit change bumps, labelled with the incident as the event left it."""
    sev = ("severity", incident.severity.value)
    team = ("team", incident.team)
    table: dict[str, list[tuple[str, Labels]]] = {
        "opened": [("incidents_opened_total", (sev, ("service", metric_service(incident.service, incident.restricted))))],
        "acknowledged": [("incidents_acknowledged_total", (sev,))],
        "reopened": [("incidents_reopened_total", (sev,))],
        "resolved": [("incidents_resolved_total", (sev,))],
        "closed": [("incidents_closed_total", (sev,))],
        "escalated": [("escalations_total", (team,))],
        "escalation_failed": [("escalation_failures_total", (team,))],
        "mttr_target_breached": [("mttr_target_breaches_total", (sev,))],
        "postmortem_overdue": [("postmortem_reminders_total", (team,))],
    }
    return table.get(change, [])


def _count_deduplicated(counts: dict[str, int], service: str, firing: int) -> None:
    """Alerts that fired into an incident already open for them (one event folds many)."""
    if firing:
        key = counter_key("alerts_deduplicated_total", (("service", service),))
        counts[key] = counts.get(key, 0) + firing


def apply_alert(previous: IncidentFacts, version: int, change: str, service: str, firing: int = 1,
                restricted: bool = False) -> IncidentFacts | None:
    """The facts after alerts attached or resolved (nothing but counters can change).
    ``restricted``: the event's incident is; the facts' own flag counts too (either hides the service)."""
    if previous.last_version >= version:
        return None
    counts = dict(previous.counts)
    if change == "alerts_attached":
        _count_deduplicated(counts, metric_service(service, restricted or previous.restricted), firing)
    return previous.model_copy(update={"counts": counts, "last_version": version})


def apply_audit(previous: IncidentFacts | None, version: int, change: str, incident: Incident,
                firing: int = 0) -> IncidentFacts | None:
    """The facts after one audit event, or None when this version was already folded.
    ``firing``: for alerts attached, how many of them fired."""
    if previous is not None and previous.last_version >= version:
        return None
    counts = dict(previous.counts) if previous else {}
    for name, labels in counter_increments(change, incident):
        key = counter_key(name, labels)
        counts[key] = counts.get(key, 0) + 1
    if change == "alerts_attached":
        _count_deduplicated(counts, metric_service(incident.service, incident.restricted), firing)
    # A reopen clears acknowledged_at on the incident; the first acknowledgement is kept here.
    acknowledged = (previous.first_acknowledged_at if previous else None) or incident.acknowledged_at
    # resolved_at survives a reopen, so the first one seen is the first resolution.
    first_resolved = (previous.first_resolved_at if previous else None) or incident.resolved_at
    postmortem = incident.postmortem
    return IncidentFacts(
        incident_id=incident.incident_id,
        severity=incident.severity.value,
        service=metric_service(incident.service, incident.restricted),
        team=incident.team,
        restricted=incident.restricted,
        status=incident.status.value,
        detected_at=incident.detected_at,
        opened_at=incident.opened_at,
        first_acknowledged_at=acknowledged,
        first_resolved_at=first_resolved,
        resolved_at=incident.resolved_at,
        reopen_count=incident.reopen_count,
        mttr_target_minutes=incident.mttr_target_minutes,
        postmortem_required=bool(postmortem and postmortem.required),
        postmortem_status=postmortem.status if postmortem else None,
        postmortem_created_at=postmortem.created_at if postmortem else None,
        postmortem_due_at=postmortem.due_at if postmortem else None,
        counts=counts,
        last_version=version,
    )


def _in_window(moment: datetime | None, now: datetime, window: timedelta) -> bool:
    return moment is not None and moment >= now - window


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60.0


def resolved_in_window(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> list[IncidentFacts]:
    """Incidents resolved or closed now whose latest resolution lies in the window."""
    return [
        f for f in facts if f.status in ("resolved", "closed") and _in_window(f.resolved_at, now, window)
    ]


def _mean_by_severity(pairs: Iterable[tuple[str, float]]) -> dict[str, tuple[float, int]]:
    groups: dict[str, list[float]] = {}
    for severity, value in pairs:
        groups.setdefault(severity, []).append(value)
    return {sev: (sum(values) / len(values), len(values)) for sev, values in groups.items()}


def mttr_minutes(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (mean minutes from detection to latest resolution, incidents counted).

    A reopened incident counts once it is resolved again, with its whole detection-to-final-resolution span.
    """
    return _mean_by_severity(
        (f.severity, minutes_to_resolve(f.detected_at, f.resolved_at)) for f in resolved_in_window(facts, now, window)
    )


def over_mttr_target(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, int]:
    """Per severity: incidents counted in mttr_minutes whose own time to resolve exceeded their target."""
    counts: dict[str, int] = {}
    for f in resolved_in_window(facts, now, window):
        if f.mttr_target_minutes is not None and minutes_to_resolve(f.detected_at, f.resolved_at) > f.mttr_target_minutes:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


def reopen_rate(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (share reopened at least once, incidents counted: first resolved in the window)."""
    return _mean_by_severity(
        (f.severity, 1.0 if f.reopen_count > 0 else 0.0)
        for f in facts
        if _in_window(f.first_resolved_at, now, window)
    )


def time_to_acknowledge(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> dict[str, tuple[float, int]]:
    """Per severity: (mean minutes from opening to first acknowledgement, incidents first acknowledged in the window)."""
    return _mean_by_severity(
        (f.severity, _minutes(f.opened_at, f.first_acknowledged_at))
        for f in facts
        if _in_window(f.first_acknowledged_at, now, window)
    )


def open_incidents(facts: Iterable[IncidentFacts]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in facts:
        if f.status in OPEN_STATUSES:
            counts[f.severity] = counts.get(f.severity, 0) + 1
    return counts


@dataclass(frozen=True)
class PostmortemStats:
    required: int  # required postmortems created in the window
    completed: int  # of those, completed
    overdue: int  # of those, past their due date and not completed

    @property
    def due(self) -> int:
        """Postmortems that should exist by now: completed ones and overdue ones."""
        return self.completed + self.overdue

    @property
    def completion_rate(self) -> float:
        """completed / (completed + overdue); 1.0 while nothing is due (nothing has been missed)."""
        return self.completed / self.due if self.due else 1.0


def postmortem_stats(facts: Iterable[IncidentFacts], now: datetime, window: timedelta) -> PostmortemStats:
    required = completed = overdue = 0
    for f in facts:
        if not f.postmortem_required or not _in_window(f.postmortem_created_at, now, window):
            continue
        required += 1
        if f.postmortem_status == "completed":
            completed += 1
        elif f.postmortem_due_at is not None and f.postmortem_due_at <= now:
            overdue += 1
    return PostmortemStats(required=required, completed=completed, overdue=overdue)


def counter_totals(per_record_counts: Iterable[dict[str, int]]) -> dict[tuple[str, Labels], int]:
    """Sum counter increments kept per record (incident or source partition) into totals."""
    totals: dict[tuple[str, Labels], int] = {}
    for counts in per_record_counts:
        for key, value in counts.items():
            parsed = parse_counter_key(key)
            totals[parsed] = totals.get(parsed, 0) + value
    return totals
