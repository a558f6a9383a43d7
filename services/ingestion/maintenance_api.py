"""Maintenance windows: POST, GET and DELETE /v1/maintenance (each one an audit entry)."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import catalogue as cat
from shared.auth import Permission
from shared.db import oncall as store
from shared.domain.maintenance import LabelMatcher, MaintenanceWindow
from shared.domain.organisation import Organisation

from .errors import ApiError, field_errors
from .oncall_api import RfcTime, refuse
from .oncall_writes import delete, publish_and_wait
from .runtime import Runtime
from .security import actor_name, needs, require

router = APIRouter(prefix="/v1/maintenance", tags=["maintenance"])
WindowId = Annotated[str, Path(pattern=r"^mw_[0-9a-f]{12}$")]


class WindowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["services"], "properties": {"services": {"minItems": 1}}},
        {"required": ["matchers"], "properties": {"matchers": {"minItems": 1}}},
    ]})
    services: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default=[], max_length=200)
    matchers: list[LabelMatcher] = Field(default=[], max_length=50)
    start: RfcTime
    end: RfcTime
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    who: Annotated[str, Field(min_length=1, max_length=200)] | None = None


def check_window(org: Organisation, body: WindowRequest, now: datetime) -> None:
    if not body.services and not body.matchers:
        raise refuse(400, "maintenance window", "services",
                     "name services, label matchers, or both (a window for everything is a matcher such as "
                     "{\"name\": \"alertname\", \"value\": \".*\", \"regex\": true})")
    for index, service in enumerate(body.services):
        if service not in org.services:
            raise refuse(404, "maintenance window", f"services.{index}", f"unknown service {service!r}")
    if body.end <= body.start:
        raise refuse(409, "maintenance window", "end", "must be after start")
    if body.end <= now:
        raise refuse(409, "maintenance window", "end", "the window would already be over")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("", status_code=201, summary="Open a maintenance window: its alerts are recorded, nobody is paged",
             dependencies=[needs(Permission.MANAGE_ONCALL)])
async def create_window(request: Request, body: WindowRequest) -> dict[str, Any]:
    principal = await require(request, Permission.MANAGE_ONCALL)
    rt = _rt(request)
    now = datetime.now(timezone.utc)
    check_window(rt.org, body, now)
    actor = actor_name(principal)
    try:
        window = MaintenanceWindow(window_id="mw_" + secrets.token_hex(6), services=body.services,
                                   matchers=body.matchers, start=body.start, end=body.end, reason=body.reason,
                                   who=body.who or actor, created_by=actor, created_at=now)
    except ValidationError as exc:
        details = field_errors(exc.errors())
        raise ApiError(400, f"invalid maintenance window: {details[0]['message']}", details) from None
    await publish_and_wait(rt, cat.MAINTENANCE_WINDOWS.name, store.WINDOWS, window)
    return window.model_dump(mode="json")


@router.get("", summary="Maintenance windows (current and future ones, unless asked for all)",
            dependencies=[needs(Permission.READ)])
async def list_windows(request: Request, include_past: bool = False, include_deleted: bool = False) -> dict[str, Any]:
    await require(request, Permission.READ)
    async with _rt(request).pool.acquire() as conn:
        found = await store.windows(conn, include_deleted=include_deleted,
                                    ending_after=None if include_past else datetime.now(timezone.utc))
    now = datetime.now(timezone.utc)
    items = [{**w.model_dump(mode="json"), "active": w.effective_start <= now < w.effective_end} for w in found]
    return {"windows": items, "count": len(items)}


@router.delete("/{window_id}", summary="End a maintenance window now (kept, marked deleted, audited)",
               dependencies=[needs(Permission.MANAGE_ONCALL)])
async def delete_window(request: Request, window_id: WindowId) -> dict[str, Any]:
    principal = await require(request, Permission.MANAGE_ONCALL)
    return await delete(_rt(request), cat.MAINTENANCE_WINDOWS.name, store.WINDOWS, window_id, actor_name(principal),
                        "maintenance window")
