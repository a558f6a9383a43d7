"""The recorder's writes: a batch of Kafka messages becomes rows, in bulk and idempotently.

``write_batch`` runs inside the caller's transaction and issues a fixed number of
statements per batch (``executemany`` per table), whatever the batch's size. Every
statement is idempotent: event, result and record ids are primary keys (redelivery adds
nothing), an incident row is replaced only by a higher version, an alert reference only
by a higher (count, last_seen).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from ..domain.alerts import AlertRef
from ..domain.incident import Incident
from ..domain.incident_summary import IncidentSummary
from ..messages import AuditEvent, CommandResult, CommunicationRecord, MaintenanceWindow, RotationOverride
from . import oncall
from .alert_refs import refs_of, store_refs
from .incident_rows import UPSERT_INCIDENT, incident_params

# PostgreSQL NOTIFY channel: the payload is an incident id whose rows a batch just wrote
# (the API's command round trip waits on it, services/ingestion/recorded.py).
RECORDED_CHANNEL = "incident_recorded"


@dataclass(frozen=True)
class RecordedEvent:
    """An audit event parsed for writing: the snapshot projected, the references taken out."""

    event: AuditEvent
    summary: IncidentSummary
    record: dict
    refs: list[AlertRef]

    @classmethod
    def parse(cls, event: AuditEvent) -> RecordedEvent:
        # References live in incident_alerts now: an old-format snapshot's list is not kept twice.
        record = {k: v for k, v in event.incident.items() if k != "alerts"}
        incident = Incident.model_validate(record)
        missing = [k for k in _SIDE_ROW_FIELDS.get(event.change, ()) if not isinstance(event.data.get(k), str)]
        if missing:
            raise ValueError(f"{event.change} without {', '.join(missing)} in data")
        return cls(event=event, summary=IncidentSummary.of(incident), record=record, refs=refs_of(event))


# What the side rows of these changes read from the event's data.
_SIDE_ROW_FIELDS = {"update_posted": ("message",), "evidence_added": ("evidence_id", "title")}

Message = RecordedEvent | CommandResult | CommunicationRecord | RotationOverride | MaintenanceWindow


@dataclass
class _Sorted:
    events: list[RecordedEvent] = field(default_factory=list)
    results: list[CommandResult] = field(default_factory=list)
    communications: list[CommunicationRecord] = field(default_factory=list)
    # On-call overrides and maintenance windows (the latest version of each; few, written one by one).
    oncall: list[RotationOverride | MaintenanceWindow] = field(default_factory=list)

    @classmethod
    def of(cls, messages: list[Message]) -> _Sorted:
        out = cls()
        for m in messages:
            if isinstance(m, RecordedEvent):
                out.events.append(m)
            elif isinstance(m, CommandResult):
                out.results.append(m)
            elif isinstance(m, (RotationOverride, MaintenanceWindow)):
                out.oncall.append(m)
            else:
                out.communications.append(m)
        return out


async def write_batch(conn: asyncpg.Connection, messages: list[Message], refs_cap: int) -> None:
    """Write a batch (in the caller's transaction) and notify the incidents it touched."""
    batch = _Sorted.of(messages)
    if batch.events:
        await _write_events(conn, batch.events, refs_cap)
    if batch.results:
        await conn.executemany(
            "INSERT INTO command_results (command_id, incident_id, outcome, reason, version) VALUES ($1,$2,$3,$4,$5)"
            " ON CONFLICT (command_id) DO NOTHING",
            [(r.command_id, r.incident_id, r.outcome, r.reason, r.version) for r in batch.results],
        )
    if batch.communications:
        await conn.executemany(
            "INSERT INTO communications (record_id, incident_id, occurred_at, direction, channel, team, kind, status,"
            " text, attempt, error) VALUES ($1,$2,$3,'notification',$4,$5,$6,$7,$8,$9,$10)"
            " ON CONFLICT (record_id) DO NOTHING",
            [(c.record_id, c.incident_id, c.occurred_at, c.channel, c.team, c.kind, c.status, c.text, c.attempt,
              c.error) for c in batch.communications],
        )
    for item in batch.oncall:
        await (oncall.record_override if isinstance(item, RotationOverride) else oncall.record_window)(conn, item)
    touched = sorted({m.event.incident_id for m in batch.events} | {r.incident_id for r in batch.results})
    if touched:
        # Delivered when the transaction commits, and only then.
        await conn.execute(f"SELECT pg_notify('{RECORDED_CHANNEL}', id) FROM unnest($1::text[]) AS id", touched)


def alert_receipts(event: AuditEvent) -> list[tuple]:
    """One receipt per alert an event recorded: the opening alert, or each alert folded into an
    alerts_attached event (an alert's id is an Opsgenie request's id, for example)."""
    data = event.data
    refs = {ref["fingerprint"]: ref for ref in data.get("refs") or ()}
    if event.change == "opened" and refs:
        (ref,) = refs.values()
        alert_id = data.get("alert_id") or f"{event.incident_id}:opening"
        return [(alert_id, event.incident_id, ref["fingerprint"], ref["status"], ref["summary"], ref["source"],
                 datetime.fromisoformat(ref["last_seen"]), event.event_id)]
    if event.change != "alerts_attached":
        return []
    rows = []
    for alert in data.get("alerts") or ():
        ref = refs.get(alert["fingerprint"], {})
        status = "resolved" if alert["action"] == "resolve" else "firing"
        rows.append((alert["alert_id"], event.incident_id, alert["fingerprint"], status, ref.get("summary", ""),
                     ref.get("source", ""), datetime.fromisoformat(alert["received_at"]), event.event_id))
    return rows


async def _write_events(conn: asyncpg.Connection, events: list[RecordedEvent], refs_cap: int) -> None:
    await conn.executemany(
        "INSERT INTO audit_events (event_id, incident_id, version, type, change, actor, occurred_at, summary,"
        " causation_id, data, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
        " ON CONFLICT (event_id) DO NOTHING",
        [(e.event_id, e.incident_id, e.version, e.type, e.change, e.actor, e.occurred_at, e.summary, e.causation_id,
          e.data, e.prev_hash, e.hash) for e in (m.event for m in events)],
    )
    # One incident row per incident and batch: the newest version's (older ones would lose anyway).
    newest: dict[str, RecordedEvent] = {}
    for m in events:
        kept = newest.get(m.event.incident_id)
        if kept is None or m.event.version > kept.event.version:
            newest[m.event.incident_id] = m
    await conn.executemany(UPSERT_INCIDENT, [incident_params(m.summary, m.record, m.event.hash)
                                             for m in newest.values()])
    await store_refs(conn, ((m.event.incident_id, ref) for m in events for ref in m.refs), refs_cap)
    receipts = [row for m in events for row in alert_receipts(m.event)]
    if receipts:
        await conn.executemany(
            "INSERT INTO incident_alert_receipts (alert_id, incident_id, fingerprint, status, summary, source,"
            " received_at, event_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (alert_id) DO NOTHING",
            receipts,
        )
    updates = [m.event for m in events if m.event.change == "update_posted"]
    if updates:
        await conn.executemany(
            "INSERT INTO communications (record_id, incident_id, occurred_at, direction, channel, team, kind, status,"
            " author, text) VALUES ($1,$2,$3,'update','api',$4,'update','posted',$5,$6)"
            " ON CONFLICT (record_id) DO NOTHING",
            [(e.event_id, e.incident_id, e.occurred_at, e.incident["team"], e.actor, e.data["message"])
             for e in updates],
        )
    evidence = [m.event for m in events if m.event.change == "evidence_added"]
    if evidence:
        await conn.executemany(
            "INSERT INTO evidence (incident_id, evidence_id, title, url, content, media_type, added_by, added_at,"
            " event_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
            [(e.incident_id, e.data["evidence_id"], e.data["title"], e.data.get("url"), e.data.get("content"),
              e.data.get("media_type", "text/plain"), e.actor, e.occurred_at, e.event_id) for e in evidence],
        )
