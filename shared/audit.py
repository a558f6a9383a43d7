"""Domain events become audit events: one per state change, each with the state after it,
chained to the event before it (shared/domain/audit_chain.py)."""
from __future__ import annotations

from .domain.audit_chain import GENESIS, event_hash
from .domain.events import _Event
from .domain.incident import Incident
from .messages import AuditEvent


def audit_event(event: _Event, after: Incident, causation_id: str | None, prev_hash: str | None = None) -> AuditEvent:
    """The audit event of ``event``; ``prev_hash`` is the incident's chain head before it."""
    fields = {
        "event_id": f"{after.incident_id}/v{after.version}",
        "type": event.audit_type,
        "change": event.change,
        "incident_id": after.incident_id,
        "occurred_at": event.at,
        "actor": event.actor,
        "version": after.version,
        "summary": event.describe(),
        "causation_id": causation_id,
        "data": event.model_dump(mode="json", exclude={"actor", "at", "change", "incident"}),
        "prev_hash": prev_hash or GENESIS,
    }
    # Hashed over the change alone: one event's cost, never the incident snapshot's.
    return AuditEvent(**fields, hash=event_hash(fields), incident=after.model_dump(mode="json"))
