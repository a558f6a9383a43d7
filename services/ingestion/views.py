"""Incident records as the API shows them (JSON, and the YAML record users know)."""
from __future__ import annotations

from typing import Any

import asyncpg
import yaml

from shared.db import alert_refs, queries
from shared.db.incident_rows import summary_of_row
from shared.domain.audit_chain import chain_summary

RECENT_ALERTS = 50  # the first of ``alerts``, kept under the name earlier clients read


# The status each milestone leaves an incident in (a mitigation while mitigating changes nothing).
_STATUS_AFTER = {
    "opened": "triggered", "reopened": "triggered", "acknowledged": "acknowledged",
    "mitigation_added": "mitigating", "resolved": "resolved", "closed": "closed",
}


def status_since(record: dict[str, Any]) -> str | None:
    """When the incident entered the status it is in now."""
    status, since = None, None
    for milestone in record.get("milestones") or ():
        after = _STATUS_AFTER.get(milestone.get("change"))
        if after is not None and after != status:
            status, since = after, milestone.get("at")
    return since if status == record.get("status") else None


def _postmortem_summary(record: dict[str, Any]) -> dict[str, Any] | None:
    postmortem = record.get("postmortem")
    if not postmortem:
        return None
    items = postmortem.get("action_items") or []
    return {
        "status": postmortem.get("status"),
        "required": postmortem.get("required"),
        "owner": postmortem.get("owner"),
        "due_at": postmortem.get("due_at"),
        "open_action_items": [
            {k: item.get(k) for k in ("item_id", "title", "owner", "due_date", "priority", "status")}
            for item in items if item.get("status") in ("open", "in_progress")
        ],
    }


def summary(row: asyncpg.Record) -> dict[str, Any]:
    """The projection's fields (shared/domain/incident_summary.py), and what is worked out from the record."""
    record = row["record"]
    return {
        **summary_of_row(row),
        "status_since": status_since(record),
        "mttr_target_minutes": record.get("mttr_target_minutes"),
        "escalation_failed": record.get("escalation_failed", False),
        "postmortem": _postmortem_summary(record),
        "maintenance": record.get("maintenance"),
    }


async def _alerts(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    """The incident's alert references from incident_alerts (the most recently seen first, capped),
    how many are stored, and whether the per-incident cap left some out."""
    incident_id = row["incident_id"]
    shown = await alert_refs.references(conn, incident_id)
    stats = await alert_refs.reference_stats(conn, incident_id)
    distinct = row["record"].get("distinct_alerts")
    return {
        "alerts": shown,
        "recent_alerts": shown[:RECENT_ALERTS],
        **stats,
        "alerts_shown": len(shown),
        # The snapshot counts distinct fingerprints when triage says (the new format); else what is stored.
        "distinct_alerts": distinct if distinct is not None else stats["alerts_stored"],
    }


async def full(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    incident_id = row["incident_id"]
    record = dict(row["record"])
    since = status_since(record)
    record.pop("milestones", None)
    record.pop("alerts", None)  # a record written before references had their own table
    return {
        # The projection's fields first (the columns' values), then the record as triage wrote it.
        **summary_of_row(row),
        **record,
        "status_since": since,
        "mttr_minutes": row["mttr_minutes"],
        **await _alerts(conn, row),
        "timeline": await queries.timeline(conn, incident_id),
        "communication_log": await queries.communication_log(conn, incident_id),
        "evidence": await queries.evidence(conn, incident_id),
    }


# The YAML record's shape (its order is what users read), every one a field of the projection.
YAML_FIELDS = ("incident_id", "severity", "service", "status", "mttr_minutes", "title", "team", "category",
               "commander", "detected_at", "opened_at", "resolved_at", "closed_at", "reopen_count", "alert_count")


def yaml_record(row: asyncpg.Record) -> str:
    """The incident record in the shape of the mission: incident_id, severity, service, status, mttr_minutes..."""
    fields = summary_of_row(row)
    postmortem = row["record"].get("postmortem") or {}
    doc = {
        **{name: fields[name] for name in YAML_FIELDS},
        "postmortem": postmortem.get("status"),
        "action_items": len(postmortem.get("action_items", [])),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


async def export_bundle(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    incident_id = row["incident_id"]
    record = row["record"]
    events = await queries.audit_events(conn, incident_id)
    return {
        "incident": {k: v for k, v in record.items() if k not in ("milestones",)},
        "mttr_minutes": row["mttr_minutes"],
        "timeline": await queries.timeline(conn, incident_id),
        "audit_events": events,
        # Each event carries prev_hash and hash; the head is the incident's (its newest event's).
        "audit_chain": chain_summary(incident_id, events, row["audit_head"]),
        "communication_log": await queries.communication_log(conn, incident_id),
        "evidence": await queries.evidence(conn, incident_id),
        "alerts": await alert_refs.references(conn, incident_id, limit=None),
        "postmortem": record.get("postmortem"),
    }
