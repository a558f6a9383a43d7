"""The recorder's writes: each Kafka message becomes rows, idempotently (redelivery adds nothing)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from ..messages import AuditEvent, CommandResult, CommunicationRecord

_INCIDENT_COLUMNS = (
    "incident_id, correlation_key, title, service, team, severity, category, status, commander, restricted,"
    " regulated, detected_at, opened_at, acknowledged_at, first_resolved_at, resolved_at, closed_at, reopen_count,"
    " alert_count, mttr_minutes, postmortem_required, postmortem_status, postmortem_due_at, postmortem_created_at,"
    " version, record, updated_at"
)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _mttr(record: dict) -> float | None:
    if record["status"] not in ("resolved", "closed") or not record.get("resolved_at"):
        return None
    minutes = (_ts(record["resolved_at"]) - _ts(record["detected_at"])).total_seconds() / 60.0
    return round(minutes, 2)


async def _upsert_incident(conn: asyncpg.Connection, event: AuditEvent) -> None:
    r = event.incident
    pm = r.get("postmortem") or {}
    first_resolved = _ts(r["resolved_at"]) if event.change == "resolved" else None
    await conn.execute(
        f"INSERT INTO incidents ({_INCIDENT_COLUMNS}) VALUES "
        "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27) "
        "ON CONFLICT (incident_id) DO UPDATE SET "
        " title=EXCLUDED.title, service=EXCLUDED.service, team=EXCLUDED.team, severity=EXCLUDED.severity,"
        " category=EXCLUDED.category, status=EXCLUDED.status, commander=EXCLUDED.commander,"
        " restricted=EXCLUDED.restricted, regulated=EXCLUDED.regulated, detected_at=EXCLUDED.detected_at,"
        " acknowledged_at=EXCLUDED.acknowledged_at,"
        " first_resolved_at=COALESCE(incidents.first_resolved_at, EXCLUDED.first_resolved_at),"
        " resolved_at=EXCLUDED.resolved_at, closed_at=EXCLUDED.closed_at, reopen_count=EXCLUDED.reopen_count,"
        " alert_count=EXCLUDED.alert_count, mttr_minutes=EXCLUDED.mttr_minutes,"
        " postmortem_required=EXCLUDED.postmortem_required, postmortem_status=EXCLUDED.postmortem_status,"
        " postmortem_due_at=EXCLUDED.postmortem_due_at, postmortem_created_at=EXCLUDED.postmortem_created_at,"
        " version=EXCLUDED.version, record=EXCLUDED.record, updated_at=EXCLUDED.updated_at "
        "WHERE incidents.version < EXCLUDED.version",
        r["incident_id"], r["correlation_key"], r["title"], r["service"], r["team"], r["severity"],
        r["category"], r["status"], r.get("commander"), r["restricted"], r["regulated"],
        _ts(r["detected_at"]), _ts(r["opened_at"]), _ts(r.get("acknowledged_at")), first_resolved,
        _ts(r.get("resolved_at")), _ts(r.get("closed_at")), r["reopen_count"], r["alert_count"], _mttr(r),
        pm.get("required"), pm.get("status"), _ts(pm.get("due_at")), _ts(pm.get("created_at")),
        r["version"], r, _ts(r["updated_at"]),
    )


async def record_event(conn: asyncpg.Connection, event: AuditEvent) -> bool:
    """Write one audit event and what it implies; False when it was already recorded."""
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO audit_events (event_id, incident_id, version, type, change, actor, occurred_at, summary,"
            " causation_id, data) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            event.event_id, event.incident_id, event.version, event.type, event.change, event.actor,
            event.occurred_at, event.summary, event.causation_id, event.data,
        )
        if inserted is None:
            return False
        await _upsert_incident(conn, event)
        await _record_side_rows(conn, event)
        return True


def alert_rows(event: AuditEvent) -> list[tuple]:
    """One incident_alerts row per alert an event recorded: the opening alert, or each alert
    folded into an alerts_attached event (its id is an Opsgenie request's id, for example)."""
    data = event.data
    refs = {ref["fingerprint"]: ref for ref in data.get("refs") or ()}
    if event.change == "opened" and refs:
        (ref,) = refs.values()
        alert_id = data.get("alert_id") or f"{event.incident_id}:opening"
        return [(alert_id, event.incident_id, ref["fingerprint"], ref["status"], ref["summary"], ref["source"],
                 _ts(ref["last_seen"]), event.event_id)]
    if event.change != "alerts_attached":
        return []
    rows = []
    for alert in data.get("alerts") or ():
        ref = refs.get(alert["fingerprint"], {})
        status = "resolved" if alert["action"] == "resolve" else "firing"
        rows.append((alert["alert_id"], event.incident_id, alert["fingerprint"], status, ref.get("summary", ""),
                     ref.get("source", ""), _ts(alert["received_at"]), event.event_id))
    return rows


async def _record_side_rows(conn: asyncpg.Connection, event: AuditEvent) -> None:
    data = event.data
    rows = alert_rows(event)
    if rows:
        await conn.executemany(
            "INSERT INTO incident_alerts (alert_id, incident_id, fingerprint, status, summary, source, received_at,"
            " event_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (alert_id) DO NOTHING",
            rows,
        )
    elif event.change == "update_posted":
        await conn.execute(
            "INSERT INTO communications (record_id, incident_id, occurred_at, direction, channel, team, kind, status,"
            " author, text) VALUES ($1,$2,$3,'update','api',$4,'update','posted',$5,$6) "
            "ON CONFLICT (record_id) DO NOTHING",
            event.event_id, event.incident_id, event.occurred_at, event.incident["team"], event.actor,
            data["message"],
        )
    elif event.change == "evidence_added":
        await conn.execute(
            "INSERT INTO evidence (incident_id, evidence_id, title, url, content, media_type, added_by, added_at,"
            " event_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
            event.incident_id, data["evidence_id"], data["title"], data.get("url"), data.get("content"),
            data.get("media_type", "text/plain"), event.actor, event.occurred_at, event.event_id,
        )


async def record_result(conn: asyncpg.Connection, result: CommandResult) -> None:
    await conn.execute(
        "INSERT INTO command_results (command_id, incident_id, outcome, reason, version) VALUES ($1,$2,$3,$4,$5) "
        "ON CONFLICT (command_id) DO NOTHING",
        result.command_id, result.incident_id, result.outcome, result.reason, result.version,
    )


async def record_communication(conn: asyncpg.Connection, record: CommunicationRecord) -> None:
    await conn.execute(
        "INSERT INTO communications (record_id, incident_id, occurred_at, direction, channel, team, kind, status,"
        " text, attempt, error) VALUES ($1,$2,$3,'notification',$4,$5,$6,$7,$8,$9,$10) "
        "ON CONFLICT (record_id) DO NOTHING",
        record.record_id, record.incident_id, record.occurred_at, record.channel, record.team, record.kind,
        record.status, record.text, record.attempt, record.error,
    )
