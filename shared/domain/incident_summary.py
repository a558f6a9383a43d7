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

from pydantic import BaseModel, create_model

from .incident import Incident


# Taken from Incident as they are: names and types (so the two cannot drift apart).
COPIED = (
    "incident_id", "correlation_key", "title", "service", "team", "severity", "category", "status", "commander",
    "restricted", "regulated", "detected_at", "opened_at", "acknowledged_at", "resolved_at", "closed_at",
    "reopen_count", "alert_count", "version", "updated_at",
)


class _Derived(BaseModel):
    """Worked out from the incident: its first resolution, MTTR, and its postmortem's state."""

    first_resolved_at: datetime | None
    mttr_minutes: float | None
    postmortem_required: bool | None
    postmortem_status: Literal["draft", "completed"] | None
    postmortem_due_at: datetime | None
    postmortem_created_at: datetime | None

    @classmethod
    def of(cls, incident: Incident) -> IncidentSummary:
        postmortem = incident.postmortem
        # A reopen clears nothing here: the first "resolved" milestone stays the first resolution.
        first_resolved = next((m.at for m in incident.milestones if m.change == "resolved"), None)
        return cls(
            **{name: getattr(incident, name) for name in COPIED},
            first_resolved_at=first_resolved,
            mttr_minutes=incident.mttr_minutes,
            postmortem_required=postmortem.required if postmortem else None,
            postmortem_status=postmortem.status if postmortem else None,
            postmortem_due_at=postmortem.due_at if postmortem else None,
            postmortem_created_at=postmortem.created_at if postmortem else None,
        )


# Every field required: a row always has each column, null or not.
IncidentSummary = create_model(
    "IncidentSummary",
    __base__=_Derived,
    __doc__="The incident as one row (see the module's docstring).",
    **{name: (Incident.model_fields[name].annotation, ...) for name in COPIED},
)
FIELDS: tuple[str, ...] = tuple(IncidentSummary.model_fields)
