"""The ``incidents`` table as the projection says: its upsert is built from IncidentSummary's fields."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import asyncpg

from ..domain.incident_summary import FIELDS, IncidentSummary

# Merge rules that are not "take the newer version's value": the first resolution is
# kept once known, and what identifies the incident never changes after it opened.
_KEPT = {"incident_id", "correlation_key", "opened_at"}
_MERGED = {"first_resolved_at": "COALESCE(incidents.first_resolved_at, EXCLUDED.first_resolved_at)"}
# Stored beside the projection's fields: the snapshot, and the audit chain's head.
BESIDE = ("record", "audit_head")
_COLUMNS = (*FIELDS, *BESIDE)

UPSERT_INCIDENT = (
    f"INSERT INTO incidents ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))}) "
    "ON CONFLICT (incident_id) DO UPDATE SET "
    + ", ".join(f"{name}={_MERGED.get(name, f'EXCLUDED.{name}')}" for name in _COLUMNS if name not in _KEPT)
    + " WHERE incidents.version < EXCLUDED.version"
)


def _param(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def incident_params(summary: IncidentSummary, record: dict[str, Any], audit_head: str | None) -> tuple:
    """The upsert's arguments: the projection's fields in order, the record (jsonb), the chain head.

    The head is the newest version's event hash, and a row is replaced only by a higher
    version: an event delivered again (the same hash) never moves it."""
    return (*(_param(getattr(summary, name)) for name in FIELDS), record, audit_head)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def summary_of_row(row: asyncpg.Record) -> dict[str, Any]:
    """The projection's fields of a stored incident, JSON-ready (what the API lists)."""
    return {name: _json(row[name]) for name in FIELDS}
