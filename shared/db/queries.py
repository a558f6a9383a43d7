"""What the API reads: incident records with their timeline, log and evidence (alerts: alert_refs.py)."""
from __future__ import annotations

from typing import Any

import asyncpg

from shared.db.text_filters import MATCHES_NOTHING, storable
from shared.domain.visibility import SQL_HIDDEN


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


async def get_incident_row(conn: asyncpg.Connection, incident_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM incidents WHERE incident_id = $1", incident_id)


async def incident_restricted(conn: asyncpg.Connection, incident_id: str) -> bool:
    """Whether the incident is restricted (False while it is not recorded)."""
    return bool(await conn.fetchval("SELECT restricted FROM incidents WHERE incident_id = $1", incident_id))


async def incident_version(conn: asyncpg.Connection, incident_id: str) -> int | None:
    return await conn.fetchval("SELECT version FROM incidents WHERE incident_id = $1", incident_id)


async def command_result(conn: asyncpg.Connection, command_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM command_results WHERE command_id = $1", command_id)


async def timeline(conn: asyncpg.Connection, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_id, type, change, actor, occurred_at, summary, version, data FROM audit_events "
        "WHERE incident_id = $1 ORDER BY version",
        incident_id,
    )
    return [
        {
            "event_id": r["event_id"], "type": r["type"], "change": r["change"], "actor": r["actor"],
            "occurred_at": _iso(r["occurred_at"]), "summary": r["summary"], "version": r["version"],
        }
        for r in rows
    ]


async def audit_events(conn: asyncpg.Connection, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_id, incident_id, type, change, actor, occurred_at, summary, version, causation_id, data,"
        " prev_hash, hash, recorded_at FROM audit_events WHERE incident_id = $1 ORDER BY version",
        incident_id,
    )
    return [
        {**dict(r), "occurred_at": _iso(r["occurred_at"]), "recorded_at": _iso(r["recorded_at"])} for r in rows
    ]


async def communication_log(conn: asyncpg.Connection, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT record_id, occurred_at, direction, channel, team, kind, status, author, text, attempt, error "
        "FROM communications WHERE incident_id = $1 ORDER BY occurred_at, record_id",
        incident_id,
    )
    return [{**dict(r), "occurred_at": _iso(r["occurred_at"])} for r in rows]


async def evidence(conn: asyncpg.Connection, incident_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT evidence_id, title, url, content, media_type, added_by, added_at FROM evidence "
        "WHERE incident_id = $1 ORDER BY added_at, evidence_id",
        incident_id,
    )
    return [{**dict(r), "added_at": _iso(r["added_at"])} for r in rows]


# How a list may be ordered: newest opened first; open incidents' severity (SEV1
# first, then newest); most recently closed first.
_ORDER = {
    "newest": "opened_at DESC, incident_id DESC",
    "severity": "severity ASC, opened_at DESC, incident_id DESC",
    "closed": "closed_at DESC NULLS LAST, incident_id DESC",
}
# Postmortem filters: a draft past its due time; any action item still to do.
_POSTMORTEM = {
    "overdue": "postmortem_status = 'draft' AND postmortem_due_at <= now()",
    "open_action_items": "jsonb_path_exists(record, '$.postmortem.action_items[*] ? "
                         "(@.status == \"open\" || @.status == \"in_progress\")')",
}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _incident_filter(
    *,
    statuses: list[str],
    service: str | None,
    severity: str | None,
    team: str | None,
    text: str | None,
    postmortem: str | None,
    include_restricted: bool,
) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in (("service", service), ("severity", severity), ("team", team)):
        if value is not None and not storable(value):
            clauses.append(MATCHES_NOTHING)
        elif value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if statuses:
        args.append(statuses)
        clauses.append(f"status = ANY(${len(args)}::text[])")
    if text and not storable(text):
        clauses.append(MATCHES_NOTHING)
    elif text:
        args.append(_like(text))
        n = len(args)
        clauses.append(f"(incident_id ILIKE ${n} OR title ILIKE ${n} OR service ILIKE ${n}"
                       f" OR coalesce(commander, '') ILIKE ${n})")
    if postmortem is not None:
        clauses.append(_POSTMORTEM[postmortem])
    if not include_restricted:
        clauses.append(SQL_HIDDEN)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


async def list_incidents(
    conn: asyncpg.Connection,
    *,
    statuses: list[str] = (),
    service: str | None = None,
    severity: str | None = None,
    team: str | None = None,
    text: str | None = None,
    postmortem: str | None = None,
    include_restricted: bool = False,
    order: str = "newest",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[asyncpg.Record], int]:
    """One page of incidents and how many match in all."""
    where, args = _incident_filter(statuses=list(statuses), service=service, severity=severity, team=team, text=text,
                                   postmortem=postmortem, include_restricted=include_restricted)
    total = await conn.fetchval(f"SELECT count(*) FROM incidents {where}", *args)
    rows = await conn.fetch(
        f"SELECT * FROM incidents {where} ORDER BY {_ORDER[order]} LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}",
        *args, limit, offset,
    )
    return rows, total


async def incident_for_fingerprint(conn: asyncpg.Connection, fingerprint: str) -> str | None:
    """The incident an alert key was last recorded on (Opsgenie notes name only the alert)."""
    return await conn.fetchval(
        "SELECT incident_id FROM incident_alerts WHERE fingerprint = $1 ORDER BY last_seen DESC LIMIT 1",
        fingerprint,
    )


async def recorded_alert(conn: asyncpg.Connection, alert_ids: list[str]) -> asyncpg.Record | None:
    """The first of these alert ids recorded on an incident, with when triage applied it."""
    return await conn.fetchrow(
        "SELECT a.alert_id, a.incident_id, a.fingerprint, a.status, e.occurred_at AS processed_at"
        " FROM incident_alert_receipts a JOIN audit_events e ON e.event_id = a.event_id"
        " WHERE a.alert_id = ANY($1::text[]) ORDER BY e.occurred_at LIMIT 1",
        alert_ids,
    )
