"""Alert references in their own table, ``incident_alerts``: one row per fingerprint of an incident.

Upserted from audit events, at most ``cap`` fingerprints per incident (beyond that the
incident's ``alert_count`` still counts every alert, and ``incident_alert_stats`` says the
list is truncated). A redelivered or older event never regresses a row: the stored
reference is replaced only by one with a higher (count, last_seen).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

import asyncpg

from ..domain.alerts import AlertRef
from ..messages import AuditEvent

ALERTS_SHOWN = 500  # the most recently seen references an incident read returns


def refs_of(event: AuditEvent) -> list[AlertRef]:
    """The references an audit event carries, in the new format or the old one."""
    data, change = event.data, event.change
    if change == "alerts_attached":
        raw = data.get("refs") or []
    elif change in ("alert_attached", "alert_resolved"):  # old format: one reference, without labels
        raw = [data["alert"]] if data.get("alert") else []
    elif change == "opened":
        raw = data.get("refs")
        if raw is None:  # old format: the opening reference is in the snapshot; its labels are the incident's
            opening = list((event.incident.get("alerts") or {}).values())[:1]
            raw = [{**ref, "labels": ref.get("labels") or event.incident.get("labels") or {}} for ref in opening]
    else:
        raw = []
    return [AlertRef.model_validate(ref) for ref in raw]


@dataclass(frozen=True)
class _Newest:
    """Per (incident, fingerprint) in a batch, the reference with the highest (count, last_seen)."""

    refs: dict[tuple[str, str], AlertRef]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, AlertRef]]) -> _Newest:
        newest: dict[tuple[str, str], AlertRef] = {}
        for incident_id, ref in pairs:
            key = (incident_id, ref.fingerprint)
            kept = newest.get(key)
            if kept is None or (ref.count, ref.last_seen) > (kept.count, kept.last_seen):
                newest[key] = ref
        return cls(newest)


_UPSERT = (
    "INSERT INTO incident_alerts (incident_id, fingerprint, dedup_key, name, summary, status, count, first_seen,"
    " last_seen, source, labels) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
    "ON CONFLICT (incident_id, fingerprint) DO UPDATE SET dedup_key=EXCLUDED.dedup_key, name=EXCLUDED.name,"
    " summary=EXCLUDED.summary, status=EXCLUDED.status, count=EXCLUDED.count, first_seen=EXCLUDED.first_seen,"
    " last_seen=EXCLUDED.last_seen, source=EXCLUDED.source,"
    # An old-format event carries no labels: an empty set never replaces the known ones.
    " labels=CASE WHEN EXCLUDED.labels = '{}'::jsonb THEN incident_alerts.labels ELSE EXCLUDED.labels END "
    "WHERE (incident_alerts.count, incident_alerts.last_seen) < (EXCLUDED.count, EXCLUDED.last_seen)"
)


def _row(incident_id: str, ref: AlertRef) -> tuple:
    return (incident_id, ref.fingerprint, ref.dedup_key, ref.name, ref.summary, ref.status.value, ref.count,
            ref.first_seen, ref.last_seen, ref.source, ref.labels)


async def store_refs(conn: asyncpg.Connection, pairs: Iterable[tuple[str, AlertRef]], cap: int) -> None:
    """Upsert a batch's references (inside the caller's transaction), at most ``cap`` per incident."""
    newest = _Newest.of(pairs).refs
    if not newest:
        return
    incident_ids = sorted({incident_id for incident_id, _ in newest})
    # Each incident's count row, locked (in a fixed order): a second recorder worker taking over
    # a partition mid-rebalance waits here instead of counting the same new fingerprint twice.
    await conn.execute(
        "INSERT INTO incident_alert_stats (incident_id, stored) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING",
        incident_ids,
    )
    stats = {
        r["incident_id"]: [r["stored"], r["truncated"]]
        for r in await conn.fetch(
            "SELECT incident_id, stored, truncated FROM incident_alert_stats WHERE incident_id = ANY($1::text[])"
            " ORDER BY incident_id FOR UPDATE", incident_ids)
    }
    keys = list(newest)
    existing = {
        (r["incident_id"], r["fingerprint"])
        for r in await conn.fetch(
            "SELECT a.incident_id, a.fingerprint FROM incident_alerts a"
            " JOIN unnest($1::text[], $2::text[]) AS k(incident_id, fingerprint) USING (incident_id, fingerprint)",
            [k[0] for k in keys], [k[1] for k in keys])
    }
    rows = []
    for key, ref in newest.items():
        counts = stats[key[0]]
        if key not in existing:
            if counts[0] >= cap:
                counts[1] = True  # counted in alert_count, not listed
                continue
            counts[0] += 1
        rows.append(_row(key[0], ref))
    await conn.executemany(_UPSERT, rows)
    await conn.executemany(
        "UPDATE incident_alert_stats SET stored = $2, truncated = $3 WHERE incident_id = $1",
        [(incident_id, stored, truncated) for incident_id, (stored, truncated) in stats.items()],
    )


async def references(conn: asyncpg.Connection, incident_id: str, limit: int | None = ALERTS_SHOWN) -> list[dict[str, Any]]:
    """The most recently seen references of an incident, JSON-ready (``limit=None``: all of them)."""
    rows = await conn.fetch(
        "SELECT fingerprint, dedup_key, name, summary, status, count, first_seen, last_seen, source, labels"
        " FROM incident_alerts WHERE incident_id = $1 ORDER BY last_seen DESC, fingerprint LIMIT $2",
        incident_id, limit,
    )
    return [
        {**dict(r), "first_seen": r["first_seen"].isoformat(), "last_seen": r["last_seen"].isoformat(),
         "labels": r["labels"] if isinstance(r["labels"], dict) else json.loads(r["labels"])}
        for r in rows
    ]


async def reference_stats(conn: asyncpg.Connection, incident_id: str) -> dict[str, Any]:
    """How many references are stored for an incident, and whether the cap cut the list."""
    row = await conn.fetchrow("SELECT stored, truncated FROM incident_alert_stats WHERE incident_id = $1", incident_id)
    return {"alerts_stored": row["stored"] if row else 0, "alerts_truncated": bool(row and row["truncated"])}
