"""The incidents API: read records, and turn people's requests into lifecycle commands."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Permission
from shared.db import queries
from shared.db.ids import allocate_incident_id
from shared.db.tokens import Principal
from shared.db.unavailable import unavailable
from shared.domain import commands as c
from shared.domain.ids import INCIDENT_ID
from shared.domain.incident import ActionStatus, IncidentStatus, Priority
from shared.domain.organisation import Category, Severity
from shared.domain.visibility import is_restricted, visible

from . import views
from .command_bus import CommandPending, execute
from .errors import ApiError
from .runtime import Runtime
from .security import actor_name, can_see_restricted, needs, require

router = APIRouter(prefix="/v1/incidents", tags=["incidents"])
IncidentId = Annotated[str, Path(pattern=INCIDENT_ID.pattern, max_length=40)]


class Declare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=1024)]
    service: Annotated[str, Field(min_length=1, max_length=200)]
    severity: Severity | None = None
    category: Category | None = None
    impact: Annotated[str, Field(max_length=4096)] | None = None
    commander: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    labels: dict[str, Annotated[str, Field(max_length=4096)]] = {}


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


async def _visible_row(rt: Runtime, principal: Principal, incident_id: str):
    async with rt.pool.acquire() as conn:
        row = await queries.get_incident_row(conn, incident_id)
    if row is None or not visible(row["restricted"], can_see_restricted(principal)):
        # Restricted incidents are not even confirmed to exist for other roles.
        raise ApiError(404, f"no incident {incident_id}", {"incident_id": incident_id})
    return row


async def _view(rt: Runtime, incident_id: str) -> dict[str, Any]:
    async with rt.pool.acquire() as conn:
        row = await queries.get_incident_row(conn, incident_id)
        return await views.full(conn, row)


def pending(incident_id: str, command_id: str | None) -> JSONResponse:
    """202: the command is on incident.commands and will be applied; its result is not readable now."""
    return JSONResponse(
        {"status": "accepted", "applied": False, "incident_id": incident_id, "command_id": command_id,
         "detail": "the database is unavailable: the command is on the broker and triage applies it; "
                   "read the incident again once the database is back"},
        status_code=202, headers={"Location": f"/v1/incidents/{incident_id}"},
    )


async def _command(request: Request, incident_id: str, command, permission: Permission) -> dict[str, Any] | JSONResponse:
    principal = await require(request, permission)
    rt = _rt(request)
    try:
        await _visible_row(rt, principal, incident_id)
        checked = True
    except Exception as exc:  # noqa: BLE001 - sorted just below: the database away, or raised
        if not unavailable(exc):
            raise
        # Commands do not need PostgreSQL: triage holds the incident. It checks what could
        # not be checked here (a restricted incident is not found for this actor).
        checked = False
    try:
        await execute(rt.pool, rt.producer, rt.recorded, incident_id, command, actor_name(principal),
                      rt.settings.command_timeout_seconds,
                      unrestricted_only=not checked and not can_see_restricted(principal))
        return await _view(rt, incident_id)
    except CommandPending as exc:
        return pending(incident_id, exc.command_id)
    except Exception as exc:  # noqa: BLE001 - applied, but the database went away before the view was read
        if not unavailable(exc):
            raise
        return pending(incident_id, None)


@router.post("", status_code=201, summary="Declare an incident by hand", dependencies=[needs(Permission.DECLARE)])
async def declare(request: Request, body: Declare) -> dict[str, Any]:  # or a 202 when pending
    principal = await require(request, Permission.DECLARE)
    rt = _rt(request)
    if body.category is not None and is_restricted(body.category) and not can_see_restricted(principal):
        raise ApiError(403, "only a security-admin may declare a security incident")
    opening = f"declared:{uuid.uuid4()}"
    incident_id = await allocate_incident_id(rt.pool, opening, datetime.now(timezone.utc).date())
    command = c.OpenIncident(
        incident_id=incident_id,
        correlation_key=opening,
        title=body.title,
        service=body.service,
        severity=body.severity,
        category=body.category,
        impact=body.impact,
        commander=body.commander,
        labels=body.labels,
    )
    try:
        await execute(rt.pool, rt.producer, rt.recorded, incident_id, command, actor_name(principal),
                      rt.settings.command_timeout_seconds)
    except CommandPending as exc:
        return pending(incident_id, exc.command_id)
    return await _view(rt, incident_id)


@router.get("", summary="List incidents, one page at a time (newest first unless sorted otherwise)",
            dependencies=[needs(Permission.READ)])
async def list_incidents(
    request: Request,
    status: Annotated[list[IncidentStatus] | None, Query(description="repeat for several")] = None,
    service: Annotated[str | None, Query(max_length=200)] = None,
    severity: Severity | None = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the id, title, service or commander")] = None,
    postmortem: Annotated[Literal["overdue", "open_action_items"] | None,
                          Query(description="a draft past its due time; an action item still to do")] = None,
    sort: Annotated[Literal["newest", "severity", "closed"],
                    Query(description="newest opened; SEV1 first; most recently closed")] = "newest",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    principal = await require(request, Permission.READ)
    rt = _rt(request)
    async with rt.pool.acquire() as conn:
        rows, total = await queries.list_incidents(
            conn,
            statuses=[s.value for s in status or ()],
            service=service,
            severity=severity.value if severity else None,
            team=team,
            text=q.strip() or None if q else None,
            postmortem=postmortem,
            include_restricted=can_see_restricted(principal),
            order=sort,
            limit=limit,
            offset=offset,
        )
    return {"incidents": [views.summary(row) for row in rows], "count": len(rows), "total": total, "offset": offset}


@router.get(
    "/{incident_id}",
    summary="One incident with its timeline, communication log, evidence and postmortem",
    responses={200: {"content": {"application/json": {}, "application/yaml": {}}}},
    dependencies=[needs(Permission.READ)],
)
async def get_incident(request: Request, incident_id: IncidentId):
    principal = await require(request, Permission.READ)
    rt = _rt(request)
    row = await _visible_row(rt, principal, incident_id)
    if "yaml" in request.headers.get("accept", ""):
        return Response(views.yaml_record(row), media_type="application/yaml")
    async with rt.pool.acquire() as conn:
        return JSONResponse(await views.full(conn, row))


@router.post("/{incident_id}/acknowledge", summary="Acknowledge (stops the escalation)", dependencies=[needs(Permission.RESPOND)])
async def acknowledge(request: Request, incident_id: IncidentId, body: c.Acknowledge | None = None):
    return await _command(request, incident_id, body or c.Acknowledge(), Permission.RESPOND)


@router.post("/{incident_id}/updates", summary="Post a status update (communication log)", dependencies=[needs(Permission.UPDATE)])
async def post_update(request: Request, incident_id: IncidentId, body: c.PostUpdate):
    return await _command(request, incident_id, body, Permission.UPDATE)


@router.post("/{incident_id}/mitigations", summary="Record a mitigation step (ticks a playbook step)", dependencies=[needs(Permission.RESPOND)])
async def add_mitigation(request: Request, incident_id: IncidentId, body: c.AddMitigation):
    return await _command(request, incident_id, body, Permission.RESPOND)


@router.post("/{incident_id}/evidence", summary="Attach evidence (a link, or text up to the size limit)", dependencies=[needs(Permission.UPDATE)])
async def add_evidence(request: Request, incident_id: IncidentId, body: c.AddEvidence):
    return await _command(request, incident_id, body, Permission.UPDATE)


@router.post("/{incident_id}/severity", summary="Change the severity, with a reason", dependencies=[needs(Permission.RESPOND)])
async def change_severity(request: Request, incident_id: IncidentId, body: c.ChangeSeverity):
    return await _command(request, incident_id, body, Permission.RESPOND)


@router.post("/{incident_id}/commander", summary="Hand the incident to another commander", dependencies=[needs(Permission.RESPOND)])
async def change_commander(request: Request, incident_id: IncidentId, body: c.ChangeCommander):
    return await _command(request, incident_id, body, Permission.RESPOND)


@router.post("/{incident_id}/resolve", summary="Resolve (creates the postmortem draft when required)", dependencies=[needs(Permission.RESPOND)])
async def resolve(request: Request, incident_id: IncidentId, body: c.Resolve | None = None):
    return await _command(request, incident_id, body or c.Resolve(), Permission.RESPOND)


@router.post("/{incident_id}/close", summary="Close a resolved incident, with a verification note", dependencies=[needs(Permission.RESPOND)])
async def close(request: Request, incident_id: IncidentId, body: c.Close):
    return await _command(request, incident_id, body, Permission.RESPOND)


@router.post("/{incident_id}/reopen", summary="Reopen a resolved or closed incident", dependencies=[needs(Permission.RESPOND)])
async def reopen(request: Request, incident_id: IncidentId, body: c.Reopen):
    return await _command(request, incident_id, body, Permission.RESPOND)


@router.get("/{incident_id}/postmortem", summary="The postmortem (404 while there is none)", dependencies=[needs(Permission.READ)])
async def get_postmortem(request: Request, incident_id: IncidentId):
    principal = await require(request, Permission.READ)
    row = await _visible_row(_rt(request), principal, incident_id)
    postmortem = row["record"].get("postmortem")
    if postmortem is None:
        raise ApiError(404, f"{incident_id} has no postmortem yet", {"incident_id": incident_id})
    return postmortem


async def _postmortem_command(request: Request, incident_id: str, command) -> dict[str, Any]:
    view = await _command(request, incident_id, command, Permission.POSTMORTEM)
    return view if isinstance(view, JSONResponse) else view["postmortem"]


@router.put("/{incident_id}/postmortem", summary="Write postmortem sections (creates it if missing)", dependencies=[needs(Permission.POSTMORTEM)])
async def edit_postmortem(request: Request, incident_id: IncidentId, body: c.EditPostmortem):
    return await _postmortem_command(request, incident_id, body)


@router.post("/{incident_id}/postmortem/action-items", status_code=201, summary="Add a corrective action item", dependencies=[needs(Permission.POSTMORTEM)])
async def add_action_item(request: Request, incident_id: IncidentId, body: c.AddActionItem):
    return await _postmortem_command(request, incident_id, body)


class ActionItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    owner: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    due_date: date | None = None
    priority: Priority | None = None
    status: ActionStatus | None = None


@router.patch("/{incident_id}/postmortem/action-items/{item_id}", summary="Update an action item", dependencies=[needs(Permission.POSTMORTEM)])
async def update_action_item(
    request: Request,
    incident_id: IncidentId,
    item_id: Annotated[str, Path(pattern=r"^AI-\d+$")],
    body: ActionItemPatch,
):
    command = c.UpdateActionItem(item_id=item_id, **body.model_dump(exclude_none=True))
    return await _postmortem_command(request, incident_id, command)


@router.post("/{incident_id}/postmortem/complete", summary="Complete the postmortem", dependencies=[needs(Permission.POSTMORTEM)])
async def complete_postmortem(request: Request, incident_id: IncidentId):
    return await _postmortem_command(request, incident_id, c.CompletePostmortem())


@router.get("/{incident_id}/export", summary="The compliance bundle: timeline, log, evidence, postmortem, audit events", dependencies=[needs(Permission.EXPORT)])
async def export(request: Request, incident_id: IncidentId):
    principal = await require(request, Permission.EXPORT)
    rt = _rt(request)
    row = await _visible_row(rt, principal, incident_id)
    async with rt.pool.acquire() as conn:
        bundle = await views.export_bundle(conn, row)
    bundle["exported_at"] = datetime.now(timezone.utc).isoformat()
    bundle["exported_by"] = principal.name
    return bundle
