"""The incident flattened to one row: the one home of the incident's shape outside triage.

``IncidentSummary`` is a projection of ``Incident``. Its fields are, by name and type,
the columns of PostgreSQL's ``incidents`` table (the recorder writes them from it,
shared/db/incident_rows.py), the fields of an incident in ``GET /v1/incidents``
(services/ingestion/views.py) and the properties of the OpenAPI ``IncidentSummary``
schema (services/ingestion/openapi.py). Adding a field here adds it to all three; a
column the migration lacks fails the recorder's integration test at once.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from .incident import Incident, IncidentStatus
from .organisation import Category, Severity


class IncidentSummary(BaseModel):
    incident_id: str
    correlation_key: str
    title: str
    service: str
    team: str
    severity: Severity
    category: Category
    status: IncidentStatus
    commander: str | None
    restricted: bool
    regulated: bool
    detected_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    first_resolved_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    alert_count: int
    mttr_minutes: float | None
    postmortem_required: bool | None
    postmortem_status: Literal["draft", "completed"] | None
    postmortem_due_at: datetime | None
    postmortem_created_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        postmortem = incident.postmortem
        # A reopen clears nothing here: the first "resolved" milestone stays the first resolution.
        first_resolved = next((m.at for m in incident.milestones if m.change == "resolved"), None)
        return cls(
            **{name: getattr(incident, name) for name in _COPIED},
            first_resolved_at=first_resolved,
            mttr_minutes=incident.mttr_minutes,
            postmortem_required=postmortem.required if postmortem else None,
            postmortem_status=postmortem.status if postmortem else None,
            postmortem_due_at=postmortem.due_at if postmortem else None,
            postmortem_created_at=postmortem.created_at if postmortem else None,
        )


# The fields that are the incident's own, unchanged.
_COPIED = tuple(name for name in IncidentSummary.model_fields if name in Incident.model_fields)
FIELDS: tuple[str, ...] = tuple(IncidentSummary.model_fields)
