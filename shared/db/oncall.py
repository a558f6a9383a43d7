"""On-call records in PostgreSQL (overrides, maintenance windows), written by the recorder from their
compacted topics, and the audit trail of who changed them.

Both are versioned records: version 1 is the creation, version 2 the deletion (kept, with
who and when). A redelivered message changes nothing: the upsert keeps the higher version
and the audit entry's id is the record's id and version.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import asyncpg
from pydantic import BaseModel

from ..domain.maintenance import MaintenanceWindow
from ..domain.oncall import RotationOverride
from .text_filters import MATCHES_NOTHING, storable


@dataclass(frozen=True)
class Kind:
    table: str
    key: str  # the id column (and field)
    model: type[BaseModel]
    subject: str  # the audit trail's subject kind
    columns: Callable[[Any], dict[str, Any]]  # the searchable columns besides id, version and record


OVERRIDES = Kind("rotation_overrides", "override_id", RotationOverride, "override", lambda o: {
    "rotation": o.rotation, "person": o.person, "starts_at": o.start, "ends_at": o.end, "reason": o.reason})
WINDOWS = Kind("maintenance_windows", "window_id", MaintenanceWindow, "maintenance", lambda w: {
    "starts_at": w.start, "ends_at": w.end, "reason": w.reason, "who": w.who})


async def audit(conn: asyncpg.Connection, event_id: str, occurred_at: datetime, actor: str, action: str,
                subject_kind: str, subject_id: str, data: dict[str, Any]) -> None:
    """One audit entry; the event id makes a redelivered message add nothing."""
    await conn.execute(
        "INSERT INTO oncall_audit (event_id, occurred_at, actor, action, subject_kind, subject_id, data)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (event_id) DO NOTHING",
        event_id, occurred_at, actor, action, subject_kind, subject_id, data,
    )


async def record(conn: asyncpg.Connection, kind: Kind, item: Any) -> None:
    """Write one version of an override or a window, and its audit entry."""
    data = item.model_dump(mode="json")
    key = getattr(item, kind.key)
    values = {kind.key: key, **kind.columns(item), "created_by": item.created_by, "created_at": item.created_at,
              "deleted_by": item.deleted_by, "deleted_at": item.deleted_at, "version": item.version, "record": data}
    names = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(
        f"INSERT INTO {kind.table} ({names}) VALUES ({placeholders}) ON CONFLICT ({kind.key}) DO UPDATE SET"
        " deleted_by=EXCLUDED.deleted_by, deleted_at=EXCLUDED.deleted_at, version=EXCLUDED.version,"
        f" record=EXCLUDED.record WHERE {kind.table}.version < EXCLUDED.version",
        *values.values(),
    )
    deleted = item.deleted_at is not None
    await audit(conn, f"{kind.subject}:{key}/v{item.version}", item.deleted_at if deleted else item.created_at,
                (item.deleted_by or "unknown") if deleted else item.created_by,
                f"{kind.subject}.{'deleted' if deleted else 'created'}", kind.subject, key, data)


async def record_override(conn: asyncpg.Connection, override: RotationOverride) -> None:
    await record(conn, OVERRIDES, override)


async def record_window(conn: asyncpg.Connection, window: MaintenanceWindow) -> None:
    await record(conn, WINDOWS, window)


async def items(conn: asyncpg.Connection, kind: Kind, *, include_deleted: bool = False,
                ending_after: datetime | None = None, **equal: Any) -> list:
    clauses, args = [], []
    for column, value in equal.items():
        if isinstance(value, str) and not storable(value):
            clauses.append(MATCHES_NOTHING)
        elif value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if not include_deleted:
        clauses.append("deleted_at IS NULL")
    if ending_after is not None:
        args.append(ending_after)
        clauses.append(f"ends_at > ${len(args)}")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await conn.fetch(f"SELECT record FROM {kind.table} {where} ORDER BY starts_at, {kind.key}", *args)
    return [kind.model.model_validate(row["record"]) for row in rows]


async def item(conn: asyncpg.Connection, kind: Kind, key: str):
    row = await conn.fetchrow(f"SELECT record FROM {kind.table} WHERE {kind.key} = $1", key)
    return kind.model.model_validate(row["record"]) if row else None


async def version(conn: asyncpg.Connection, kind: Kind, key: str) -> int | None:
    return await conn.fetchval(f"SELECT version FROM {kind.table} WHERE {kind.key} = $1", key)


async def overrides(conn: asyncpg.Connection, *, rotation: str | None = None, include_deleted: bool = False,
                    ending_after: datetime | None = None) -> list[RotationOverride]:
    return await items(conn, OVERRIDES, include_deleted=include_deleted, ending_after=ending_after, rotation=rotation)


async def windows(conn: asyncpg.Connection, *, include_deleted: bool = False,
                  ending_after: datetime | None = None) -> list[MaintenanceWindow]:
    return await items(conn, WINDOWS, include_deleted=include_deleted, ending_after=ending_after)
