"""The Opsgenie-compatible Alert API: an Opsgenie sender changes one URL and keeps its key header.

Requests are answered the way Opsgenie answers them (``202 {"result": "Request will be
processed", "took", "requestId"}``), and the request's status is derived from what the
pipeline recorded for the alert that carried its id: nothing is written to PostgreSQL
when an alert is taken in, so intake keeps working while the database is away.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from shared import catalogue as cat
from shared.auth import Role
from shared.db import queries
from shared.db.tokens import Principal
from shared.domain.commands import PostUpdate
from shared.domain.visibility import visible
from shared.messages import NOT_BLANK, CommandEnvelope, NativeAlert

from .errors import ApiError, field_errors
from .formats import opsgenie as og
from .intake import ALERTS_REFUSED, _publish
from .runtime import Runtime
from .security import actor_name, can_see_restricted, client_of, principal_for

router = APIRouter(tags=["opsgenie"])
MAX_REQUEST_BYTES = 512 * 1024
# Plain strings, checked here: a bad value is answered in Opsgenie's shape, not FastAPI's.
# The document states the rule _alias applies (1 to 1024 characters, not only whitespace), in the
# document only: a breach is answered in Opsgenie's error shape, not FastAPI's.
Identifier = Annotated[str, Path(description="The alert's id (default) or alias, per identifierType",
                                 json_schema_extra={"minLength": 1, "maxLength": 1024, "pattern": NOT_BLANK})]
IdentifierType = Annotated[str, Query(alias="identifierType", json_schema_extra={"enum": ["id", "alias"]},
                                      description="`id` (the default) or `alias`; Opsgenie's `tiny` is not supported")]
_RESULT_ACTIONS = {"create": "Create", "close": "Close", "acknowledge": "Acknowledge"}
_RESULT_STATUS = {"create": "Created alert", "close": "Closed alert", "acknowledge": "Acknowledged alert"}


class OpsgenieError(Exception):
    """Answered in Opsgenie's error shape: ``{"message", "errors"?, "took", "requestId"}``."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers


def install(app: FastAPI) -> None:
    @app.exception_handler(OpsgenieError)
    async def _answer(request: Request, exc: OpsgenieError) -> JSONResponse:
        body = og.OpsgenieRefused(message=exc.message, errors=exc.errors, took=_took(request),
                                  requestId=og.new_request_id())
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status, headers=exc.headers)


def _took(request: Request) -> float:
    started = getattr(request.state, "started", None)
    return round(time.perf_counter() - started, 3) if started else 0.0


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def genie_key(request: Request) -> str:
    """``Authorization: GenieKey <key>`` (Opsgenie's scheme), or ``Bearer <key>`` like the other intake paths."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("geniekey", "bearer") or not value.strip():
        raise OpsgenieError(401, "Could not authenticate: send Authorization: GenieKey <integration key>",
                            headers={"WWW-Authenticate": "GenieKey"})
    return value.strip()


async def integration(request: Request) -> Principal:
    """A route dependency: the integration key is checked before anything else is read."""
    request.state.started = time.perf_counter()
    principal = getattr(request.state, "principal", None)
    if principal is None:
        rt = _rt(request)
        principal = await principal_for(rt.pool, rt.tokens, genie_key(request), client_of(request))
    if principal is None:
        raise OpsgenieError(401, "Could not authenticate: unknown or revoked key",
                            headers={"WWW-Authenticate": "GenieKey"})
    if principal.role is not Role.INTEGRATION:
        raise OpsgenieError(403, f"role {principal.role.value} may not send alerts: use an integration key")
    request.state.principal = principal
    return principal


Integration = Annotated[Principal, Depends(integration)]


async def _body(request: Request, model: type[BaseModel], optional: bool = False):
    declared = request.headers.get("content-length", "")
    raw = await request.body()
    if (declared.isdigit() and int(declared) > MAX_REQUEST_BYTES) or len(raw) > MAX_REQUEST_BYTES:
        ALERTS_REFUSED.labels("opsgenie", "too_large").inc()
        raise OpsgenieError(413, f"Request is larger than {MAX_REQUEST_BYTES} bytes")
    if optional and not raw.strip():
        return model()
    try:
        data = from_json(raw)
    except ValueError as exc:
        ALERTS_REFUSED.labels("opsgenie", "not_json").inc()
        raise OpsgenieError(400, "Request body is not valid JSON", {"body": str(exc)}) from None
    if optional and data is None:
        return model()
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        ALERTS_REFUSED.labels("opsgenie", "invalid").inc()
        errors = {d["field"]: d["message"] for d in field_errors(exc.errors())}
        raise OpsgenieError(400, f"Request body is not processable: {', '.join(sorted(errors))}", errors) from None


def _alias(identifier: str, identifier_type: str) -> str:
    if not identifier.strip() or len(identifier) > 1024:
        raise OpsgenieError(400, "identifier must be 1 to 1024 characters", {"identifier": "1 to 1024 characters"})
    if identifier_type == "alias":
        return identifier
    if identifier_type == "tiny":
        raise OpsgenieError(400, "identifierType tiny is not supported here: use alias or id",
                            {"identifierType": "alias or id"})
    if identifier_type != "id":
        raise OpsgenieError(400, f"identifierType {identifier_type[:50]!r} is not one of id, alias, tiny",
                            {"identifierType": "id, alias or tiny"})
    alias = og.alias_from_id(identifier)
    if alias is None:
        raise OpsgenieError(404, f"Alert with id [{identifier}] does not exist")
    return alias


async def _send(request: Request, principal: Principal, alert: NativeAlert, request_id: str) -> JSONResponse:
    rt = _rt(request)
    try:
        await _publish(rt, principal, [alert], "opsgenie", keep_alert_ids=True)
    except ApiError as exc:
        if exc.status == 429:
            raise OpsgenieError(429, "Too many requests: the integration's rate limit is exceeded",
                                headers=exc.headers) from None
        raise OpsgenieError(exc.status, exc.error) from None
    return _accepted(request, request_id)


def _accepted(request: Request, request_id: str) -> JSONResponse:
    return JSONResponse(og.OpsgenieAccepted(took=_took(request), requestId=request_id).model_dump(), status_code=202)


_ACCEPTED = {202: {"model": og.OpsgenieAccepted, "description": "Request will be processed"}}


def _body_schema(model: str) -> dict:
    return {"requestBody": {"required": model == "OpsgenieAlert" or model == "OpsgenieNote",
                            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}}}


@router.post("/v2/alerts", status_code=202, responses=_ACCEPTED, openapi_extra=_body_schema("OpsgenieAlert"),
             summary="Opsgenie: create an alert (GenieKey integration key)",
             description="`alias` is the dedup key; `priority` maps to a source severity through the integration's "
                         "`priorities`; `details` are the alert's labels.")
async def create(request: Request, principal: Integration) -> JSONResponse:
    body = await _body(request, og.OpsgenieAlert)
    request_id = og.new_request_id()
    # Without an alias every create is its own alert, as in Opsgenie.
    alias = body.alias or uuid.uuid4().hex
    rt = _rt(request)
    try:
        alert = og.create_alert(body, alias, rt.integration(principal.name), principal.name, request_id,
                                rt.org.services.keys())
    except ValidationError as exc:
        errors = {d["field"]: d["message"] for d in field_errors(exc.errors())}
        raise OpsgenieError(400, "Request body is not processable", errors) from None
    return await _send(request, principal, alert, request_id)


async def _follow_up(request: Request, principal: Principal, action: Literal["close", "acknowledge"],
                     identifier: str, identifier_type: str) -> JSONResponse:
    body = await _body(request, og.OpsgenieAction, optional=True)
    alias = _alias(identifier, identifier_type)
    request_id = og.new_request_id()
    return await _send(request, principal, og.follow_up(action, body, alias, principal.name, request_id), request_id)


@router.post("/v2/alerts/{identifier}/close", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_schema("OpsgenieAction"),
             summary="Opsgenie: close an alert (resolves it, like any source's resolve)")
async def close(request: Request, principal: Integration, identifier: Identifier,
                identifier_type: IdentifierType = "id") -> JSONResponse:
    return await _follow_up(request, principal, "close", identifier, identifier_type)


@router.post("/v2/alerts/{identifier}/acknowledge", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_schema("OpsgenieAction"),
             summary="Opsgenie: acknowledge an alert (acknowledges a triggered incident)")
async def acknowledge(request: Request, principal: Integration, identifier: Identifier,
                      identifier_type: IdentifierType = "id") -> JSONResponse:
    return await _follow_up(request, principal, "acknowledge", identifier, identifier_type)


@router.post("/v2/alerts/{identifier}/notes", status_code=202, responses=_ACCEPTED,
             openapi_extra=_body_schema("OpsgenieNote"),
             summary="Opsgenie: add a note (posted as an update on the alert's incident)",
             description="The only Opsgenie call that reads PostgreSQL: the note needs the alert's incident.")
async def add_note(request: Request, principal: Integration, identifier: Identifier,
                   identifier_type: IdentifierType = "id") -> JSONResponse:
    body = await _body(request, og.OpsgenieNote)
    alias = _alias(identifier, identifier_type)
    rt = _rt(request)
    try:
        async with rt.pool.acquire(timeout=5) as conn:
            incident_id = await queries.incident_for_fingerprint(conn, og.scoped(principal.name, alias))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        raise OpsgenieError(503, "Notes need the database, which is not reachable; retry") from None
    if incident_id is None:
        raise OpsgenieError(404, f"Alert with {identifier_type} [{identifier}] does not exist")
    request_id = og.new_request_id()
    author = body.user or "the Opsgenie API"
    envelope = CommandEnvelope(
        command_id=og.alert_id_for(principal.name, "note", request_id),
        incident_id=incident_id,
        actor=actor_name(principal),
        issued_at=datetime.now(timezone.utc),
        command=PostUpdate(message=f"Note from {author}: {body.note}"[:10_000]),
    )
    try:
        await rt.producer.send(cat.INCIDENT_COMMANDS.name, incident_id, envelope)
    except Exception:  # noqa: BLE001 - any broker failure: the sender should retry
        raise OpsgenieError(503, "The note was not stored: the broker did not acknowledge it; retry") from None
    return _accepted(request, request_id)


class RequestStatus(BaseModel):
    success: bool
    action: str
    processedAt: str
    integrationId: str
    isSuccess: bool
    status: str
    alertId: str
    alias: str
    incidentId: str | None = None


class RequestStatusAnswer(BaseModel):
    data: RequestStatus
    took: float
    requestId: str


@router.get("/v2/alerts/requests/{requestId}", response_model=RequestStatusAnswer,
            summary="Opsgenie: the status of a request (from what the pipeline recorded)",
            description="404 until the request's alert is recorded on an incident (a close or acknowledge for an "
                        "alias that opened nothing stays 404).")
async def request_status(request: Request, principal: Integration,
                         requestId: Annotated[str, Path(description="The requestId a 202 answered with")]) -> JSONResponse:
    try:
        uuid.UUID(requestId)
    except ValueError:
        raise OpsgenieError(404, "Request not found. It might not be processed, yet.") from None
    name = principal.name
    rt = _rt(request)
    try:
        async with rt.pool.acquire(timeout=5) as conn:
            ids = [og.alert_id_for(name, action, requestId) for action in _RESULT_ACTIONS]
            recorded = await queries.recorded_alert(conn, ids)
            note = None if recorded else await queries.command_result(conn, og.alert_id_for(name, "note", requestId))
            found = recorded or note
            # The request's own incident is named only to a key that may know of it: an integration
            # key may not know of a restricted (security) incident, even one its alert opened.
            hidden = found is not None and not visible(
                await queries.incident_restricted(conn, found["incident_id"]), can_see_restricted(principal))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        raise OpsgenieError(503, "Request status needs the database, which is not reachable; retry") from None
    if recorded is not None:
        action = recorded["alert_id"].split(":")[-2]
        alias = og.alias_of(name, recorded["fingerprint"]) or ""
        status = RequestStatus(
            success=True, action=_RESULT_ACTIONS[action], processedAt=recorded["processed_at"].isoformat(),
            integrationId=name, isSuccess=True, status=_RESULT_STATUS[action],
            alertId=og.alert_id_of(alias) if alias else "", alias=alias,
            incidentId=None if hidden else recorded["incident_id"],
        )
    elif note is not None:
        applied = note["outcome"] == "applied"
        status = RequestStatus(
            success=applied, action="AddNote", processedAt=note["recorded_at"].isoformat(), integrationId=name,
            isSuccess=applied, status="Added note" if applied else (note["reason"] or note["outcome"]),
            alertId="", alias="", incidentId=None if hidden else note["incident_id"],
        )
    else:
        raise OpsgenieError(404, "Request not found. It might not be processed, yet.")
    answer = RequestStatusAnswer(data=status, took=_took(request), requestId=requestId)
    return JSONResponse(answer.model_dump(exclude_none=True))
