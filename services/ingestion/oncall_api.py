"""On call at runtime: who is on call now and next, and overrides made by API (stored outside the YAML)."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from shared import catalogue as cat
from shared.auth import Permission
from shared.db import oncall as store
from shared.domain.oncall import OnCallNow, RotationOverride, oncall_table, with_overrides
from shared.domain.organisation import Organisation
from shared.domain.rotations import bounded

from .errors import ApiError
from .oncall_writes import delete, publish_and_wait
from .runtime import Runtime
from .security import actor_name, needs, require

router = APIRouter(tags=["on call"])
def _text_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 time as text, e.g. 2026-12-24T09:00:00Z")
    return value


# RFC 3339 text with an offset (a number would be read as Unix time silently). Kept within the
# instants the rotation rules answer for (shared/domain/rotations.py): "9999-12-31T23:59:59-12:00"
# is a valid date-time whose UTC no datetime (and no asyncpg argument) can hold, so an override to
# it would be on the topic and never recorded. Moved two days in, it means the same: for ever.
RfcTime = Annotated[AwareDatetime, BeforeValidator(_text_only), AfterValidator(bounded)]
OverrideId = Annotated[str, Path(pattern=r"^ovr_[0-9a-f]{12}$")]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


async def organisation_at(rt: Runtime, at: datetime) -> Organisation:
    """The organisation with the runtime overrides still relevant at ``at``, read from PostgreSQL."""
    async with rt.pool.acquire() as conn:
        # bounded: asyncpg cannot encode an instant whose UTC is outside years 1 to 9999.
        found = await store.overrides(conn, ending_after=bounded(at))
    return with_overrides(rt.org, found)


def _now(now: OnCallNow, team: str | None, org: Organisation) -> dict[str, Any]:
    return {
        "team": team,
        "rotation": now.rotation,
        "time_zone": org.rotations[now.rotation].time_zone,
        "primary": now.primary,
        "secondary": now.secondary,
        "since": now.since.isoformat(),
        "until": now.until.isoformat(),
        "override": now.overridden,
        "next": now.next,
        "next_until": now.next_until.isoformat() if now.next_until else None,
    }


def moment(at: str | None) -> datetime:
    """``at`` as RFC 3339 text with an offset (not a number read as Unix time); default now."""
    if at is None:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(400, "invalid request: at: an RFC 3339 time with an offset, e.g. 2026-12-24T09:00:00Z",
                       [{"field": "at", "message": "an RFC 3339 time with an offset"}])
    return parsed


At = Annotated[str | None, Query(description="Another moment (RFC 3339 with an offset); default now",
                                 json_schema_extra={"format": "date-time"})]


@router.get("/v1/oncall", summary="Who is on call now for each team and rotation, until when, and who is next",
            dependencies=[needs(Permission.READ)])
async def who_is_on_call(request: Request, at: At = None) -> dict[str, Any]:
    await require(request, Permission.READ)
    rt = _rt(request)
    moment_ = moment(at)
    org = await organisation_at(rt, moment_)
    return {"at": moment_.isoformat(), "oncall": [_now(row.now, row.team, org) for row in oncall_table(org, moment_)]}


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rotation: Annotated[str, Field(min_length=1, max_length=200)]
    person: Annotated[str, Field(min_length=1, max_length=200)]
    start: RfcTime
    end: RfcTime
    reason: Annotated[str, Field(max_length=1000)] | None = None


def refuse(status: int, what: str, field: str, message: str) -> ApiError:
    """404: the body names something that does not exist; 409: its times conflict (with each other, or now)."""
    return ApiError(status, f"invalid {what}: {field}: {message}", [{"field": field, "message": message}])


def check_override(org: Organisation, body: OverrideRequest, now: datetime) -> None:
    if body.rotation not in org.rotations:
        raise refuse(404, "override", "rotation", f"unknown rotation {body.rotation!r}")
    if org.people and body.person not in org.people:
        raise refuse(404, "override", "person", f"unknown person {body.person!r} (not in the organisation's people)")
    if body.end <= body.start:
        raise refuse(409, "override", "end", "must be after start")
    if body.end <= now:
        raise refuse(409, "override", "end", "the override would already be over")


def _view(override: RotationOverride) -> dict[str, Any]:
    return override.model_dump(mode="json")


@router.post("/v1/oncall/overrides", status_code=201, summary="Override who is on call for a rotation, for a while",
             dependencies=[needs(Permission.MANAGE_ONCALL)])
async def create_override(request: Request, body: OverrideRequest) -> dict[str, Any]:
    principal = await require(request, Permission.MANAGE_ONCALL)
    rt = _rt(request)
    now = datetime.now(timezone.utc)
    check_override(rt.org, body, now)
    made = RotationOverride(override_id="ovr_" + secrets.token_hex(6), rotation=body.rotation, person=body.person,
                            start=body.start, end=body.end, reason=body.reason, created_by=actor_name(principal),
                            created_at=now)
    await publish_and_wait(rt, cat.ONCALL_OVERRIDES.name, store.OVERRIDES, made)
    return _view(made)


@router.get("/v1/oncall/overrides", summary="Overrides made at runtime (those still ahead, unless asked for all)",
            dependencies=[needs(Permission.READ)])
async def list_overrides(request: Request, rotation: Annotated[str | None, Query(max_length=200)] = None,
                         include_past: bool = False, include_deleted: bool = False) -> dict[str, Any]:
    await require(request, Permission.READ)
    rt = _rt(request)
    async with rt.pool.acquire() as conn:
        found = await store.overrides(conn, rotation=rotation, include_deleted=include_deleted,
                                      ending_after=None if include_past else datetime.now(timezone.utc))
    return {"overrides": [_view(o) for o in found], "count": len(found)}


@router.delete("/v1/oncall/overrides/{override_id}", summary="Delete an override (kept, marked deleted, audited)",
               dependencies=[needs(Permission.MANAGE_ONCALL)])
async def delete_override(request: Request, override_id: OverrideId) -> dict[str, Any]:
    principal = await require(request, Permission.MANAGE_ONCALL)
    return await delete(_rt(request), cat.ONCALL_OVERRIDES.name, store.OVERRIDES, override_id, actor_name(principal),
                        "override")
