"""Domain events become audit events: one per state change, each with the state after it."""
from __future__ import annotations

from .domain.events import _Event
from .domain.incident import Incident
from .messages import AuditEvent


def audit_event(event: _Event, after: Incident, causation_id: str | None) -> AuditEvent:
    data = event.model_dump(mode="json", exclude={"actor", "at", "change", "incident"})
    return AuditEvent(
        event_id=f"{after.incident_id}/v{after.version}",
        type=event.audit_type,
        change=event.change,
        incident_id=after.incident_id,
        occurred_at=event.at,
        actor=event.actor,
        version=after.version,
        summary=event.describe(),
        causation_id=causation_id,
        data=data,
        incident=after.model_dump(mode="json"),
    )
