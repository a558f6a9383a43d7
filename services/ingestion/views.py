"""Incident records as the API shows them (JSON, and the YAML record users know)."""
from __future__ import annotations

from typing import Any

import asyncpg
import yaml

from shared.db import queries


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
    record = row["record"]
    return {
        "incident_id": row["incident_id"],
        "title": row["title"],
        "severity": row["severity"],
        "service": row["service"],
        "team": row["team"],
        "status": row["status"],
        "category": row["category"],
        "commander": row["commander"],
        "restricted": row["restricted"],
        "regulated": row["regulated"],
        "alert_count": row["alert_count"],
        "reopen_count": row["reopen_count"],
        "detected_at": row["detected_at"].isoformat(),
        "opened_at": row["opened_at"].isoformat(),
        "acknowledged_at": row["acknowledged_at"].isoformat() if row["acknowledged_at"] else None,
        "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
        "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
        "status_since": status_since(record),
        "mttr_minutes": row["mttr_minutes"],
        "mttr_target_minutes": record.get("mttr_target_minutes"),
        "escalation_failed": record.get("escalation_failed", False),
        "postmortem": _postmortem_summary(record),
        "maintenance": record.get("maintenance"),
        "version": row["version"],
    }


async def full(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    incident_id = row["incident_id"]
    record = dict(row["record"])
    since = status_since(record)
    record.pop("milestones", None)
    record.pop("alerts", None)  # records written before references moved beside the incident
    return {
        **record,
        "status_since": since,
        "mttr_minutes": row["mttr_minutes"],
        "alerts": await queries.alert_refs(conn, incident_id),
        "recent_alerts": await queries.alerts(conn, incident_id, limit=50),
        "timeline": await queries.timeline(conn, incident_id),
        "communication_log": await queries.communication_log(conn, incident_id),
        "evidence": await queries.evidence(conn, incident_id),
    }


def yaml_record(row: asyncpg.Record) -> str:
    """The incident record in the shape of the mission: incident_id, severity, service, status, mttr_minutes..."""
    record = row["record"]
    postmortem = record.get("postmortem") or {}
    doc = {
        "incident_id": row["incident_id"],
        "severity": row["severity"],
        "service": row["service"],
        "status": row["status"],
        "mttr_minutes": row["mttr_minutes"],
        "title": row["title"],
        "team": row["team"],
        "category": row["category"],
        "commander": row["commander"],
        "detected_at": row["detected_at"].isoformat(),
        "opened_at": row["opened_at"].isoformat(),
        "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
        "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
        "reopen_count": row["reopen_count"],
        "alert_count": row["alert_count"],
        "postmortem": postmortem.get("status"),
        "action_items": len(postmortem.get("action_items", [])),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


async def export_bundle(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    incident_id = row["incident_id"]
    record = row["record"]
    return {
        "incident": {k: v for k, v in record.items() if k not in ("milestones",)},
        "mttr_minutes": row["mttr_minutes"],
        "timeline": await queries.timeline(conn, incident_id),
        "audit_events": await queries.audit_events(conn, incident_id),
        "communication_log": await queries.communication_log(conn, incident_id),
        "evidence": await queries.evidence(conn, incident_id),
        "alerts": await queries.alerts(conn, incident_id, limit=100_000),
        "postmortem": record.get("postmortem"),
    }
