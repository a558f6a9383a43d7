"""On-call records in PostgreSQL: overrides (written by the recorder from their topic) and the audit trail."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from ..domain.oncall import RotationOverride


async def audit(conn: asyncpg.Connection, event_id: str, occurred_at: datetime, actor: str, action: str,
                subject_kind: str, subject_id: str, data: dict[str, Any]) -> None:
    """One audit entry; the event id makes a redelivered message add nothing."""
    await conn.execute(
        "INSERT INTO oncall_audit (event_id, occurred_at, actor, action, subject_kind, subject_id, data)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (event_id) DO NOTHING",
        event_id, occurred_at, actor, action, subject_kind, subject_id, data,
    )


async def record_override(conn: asyncpg.Connection, override: RotationOverride) -> None:
    record = override.model_dump(mode="json")
    await conn.execute(
        "INSERT INTO rotation_overrides (override_id, rotation, person, starts_at, ends_at, reason, created_by,"
        " created_at, deleted_by, deleted_at, version, record) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
        " ON CONFLICT (override_id) DO UPDATE SET deleted_by=EXCLUDED.deleted_by, deleted_at=EXCLUDED.deleted_at,"
        " version=EXCLUDED.version, record=EXCLUDED.record WHERE rotation_overrides.version < EXCLUDED.version",
        override.override_id, override.rotation, override.person, override.start, override.end, override.reason,
        override.created_by, override.created_at, override.deleted_by, override.deleted_at, override.version, record,
    )
    deleted = override.deleted_at is not None
    await audit(
        conn, f"override:{override.override_id}/v{override.version}",
        override.deleted_at if deleted else override.created_at,
        (override.deleted_by or "unknown") if deleted else override.created_by,
        "override.deleted" if deleted else "override.created", "override", override.override_id, record,
    )


async def overrides(conn: asyncpg.Connection, *, rotation: str | None = None, include_deleted: bool = False,
                    ending_after: datetime | None = None) -> list[RotationOverride]:
    clauses, args = [], []
    if rotation is not None:
        args.append(rotation)
        clauses.append(f"rotation = ${len(args)}")
    if not include_deleted:
        clauses.append("deleted_at IS NULL")
    if ending_after is not None:
        args.append(ending_after)
        clauses.append(f"ends_at > ${len(args)}")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await conn.fetch(f"SELECT record FROM rotation_overrides {where} ORDER BY starts_at, override_id", *args)
    return [RotationOverride.model_validate(row["record"]) for row in rows]


async def override(conn: asyncpg.Connection, override_id: str) -> RotationOverride | None:
    row = await conn.fetchrow("SELECT record FROM rotation_overrides WHERE override_id = $1", override_id)
    return RotationOverride.model_validate(row["record"]) if row else None


async def override_version(conn: asyncpg.Connection, override_id: str) -> int | None:
    return await conn.fetchval("SELECT version FROM rotation_overrides WHERE override_id = $1", override_id)


async def audit_trail(conn: asyncpg.Connection, subject_kind: str, subject_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT event_id, occurred_at, actor, action FROM oncall_audit WHERE subject_kind = $1 AND subject_id = $2"
        " ORDER BY occurred_at, event_id", subject_kind, subject_id,
    )
    return [{**dict(r), "occurred_at": r["occurred_at"].isoformat()} for r in rows]
