"""Incident records as the API shows them (JSON, and the YAML record users know)."""
from __future__ import annotations

from typing import Any

import asyncpg
import yaml

from shared.db import queries


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
        "opened_at": row["opened_at"].isoformat(),
        "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
        "mttr_minutes": row["mttr_minutes"],
        "escalation_failed": record.get("escalation_failed", False),
        "maintenance": record.get("maintenance"),
        "version": row["version"],
    }


async def full(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    incident_id = row["incident_id"]
    record = dict(row["record"])
    record.pop("milestones", None)
    alerts_by_fp = record.pop("alerts", {})
    return {
        **record,
        "mttr_minutes": row["mttr_minutes"],
        "alerts": list(alerts_by_fp.values()),
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
