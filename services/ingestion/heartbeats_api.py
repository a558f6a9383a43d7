"""Heartbeat pings: our URL, Opsgenie's, and an Alertmanager webhook receiver for the Watchdog alert.

A ping is published on ``heartbeats.pings`` (acks=all) before the answer, like an
alert; the escalation service keeps the deadline. An Alertmanager notification in
which every alert is resolved is not a beat: the always-firing Watchdog resolving
means the alerting pipeline has stopped, which is what the heartbeat is there to catch.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_core import from_json

from shared import catalogue as cat
from shared.auth import Permission
from shared.db.tokens import Principal
from shared.messages import HeartbeatPing

from .errors import ApiError
from .formats import opsgenie as og
from .intake import _throttle
from .opsgenie_api import Integration, OpsgenieError, _took
from .runtime import Runtime
from .security import needs, require

router = APIRouter(tags=["heartbeats"])
Name = Annotated[str, Path(description="The heartbeat's name in the organisation file (`heartbeats`)")]
_MAX_BODY = 5 * 1024 * 1024


class PingAnswer(BaseModel):
    status: str  # "accepted", or "ignored" (a notification of resolved alerts only)
    heartbeat: str
    pinged_at: str | None = None
    reason: str | None = None


def only_resolved(body: bytes) -> bool:
    """An Alertmanager (or Grafana) webhook whose alerts are all resolved: not a beat."""
    if not body.strip():
        return False
    try:
        data: Any = from_json(body[:_MAX_BODY])
    except ValueError:
        return False  # whatever the body is, the request itself is the ping
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list) or not alerts:
        return False
    return all(isinstance(a, dict) and a.get("status") == "resolved" for a in alerts)


async def _publish(rt: Runtime, principal: Principal, name: str, source: str) -> datetime:
    now = datetime.now(timezone.utc)
    ping = HeartbeatPing(name=name, at=now, source=source, integration=principal.name)
    await rt.producer.send(cat.HEARTBEAT_PINGS.name, name, ping)
    return now


async def _ping(request: Request, name: str) -> JSONResponse:
    principal = await require(request, Permission.SEND_ALERTS)
    rt: Runtime = request.app.state.runtime
    if name not in rt.org.heartbeats:
        raise ApiError(404, f"no heartbeat named {name!r} in the configuration", {"heartbeat": name})
    if only_resolved(await request.body()):
        answer = PingAnswer(status="ignored", heartbeat=name, reason="every alert in the notification is resolved")
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=202)
    _throttle(rt, principal, 1, "heartbeat")
    try:
        at = await _publish(rt, principal, name, str(request.url.path))
    except Exception:  # noqa: BLE001 - any broker failure: the sender retries (Alertmanager does on a 5xx)
        raise ApiError(503, "ping not stored: the broker did not acknowledge it; retry") from None
    answer = PingAnswer(status="accepted", heartbeat=name, pinged_at=at.isoformat())
    return JSONResponse(answer.model_dump(exclude_none=True), status_code=202)


_ANSWER = {202: {"model": PingAnswer, "description": "The ping is stored (or ignored, with the reason)"}}
_ANY_BODY = {"requestBody": {"required": False, "content": {"application/json": {"schema": {}}}}}


@router.get("/v1/heartbeats/{name}/ping", status_code=202, responses=_ANSWER,
            summary="Ping a heartbeat (integration key)", dependencies=[needs(Permission.SEND_ALERTS)])
async def ping_get(request: Request, name: Name) -> JSONResponse:
    return await _ping(request, name)


@router.post("/v1/heartbeats/{name}/ping", status_code=202, responses=_ANSWER, openapi_extra=_ANY_BODY,
             summary="Ping a heartbeat; also the Alertmanager webhook receiver for the Watchdog alert",
             description="Any body is accepted. An Alertmanager or Grafana webhook whose alerts are all resolved "
                         "is not a beat (answered `ignored`).",
             dependencies=[needs(Permission.SEND_ALERTS)])
async def ping_post(request: Request, name: Name) -> JSONResponse:
    return await _ping(request, name)


async def _opsgenie_ping(request: Request, principal: Integration, name: Name) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    if name not in rt.org.heartbeats:
        raise OpsgenieError(404, f"Heartbeat with name [{name}] does not exist")
    request_id = og.new_request_id()
    if not only_resolved(await request.body()):
        try:
            _throttle(rt, principal, 1, "heartbeat")
            await _publish(rt, principal, name, str(request.url.path))
        except ApiError as exc:
            raise OpsgenieError(exc.status, exc.error, headers=exc.headers) from None
        except Exception:  # noqa: BLE001 - any broker failure: the sender retries
            raise OpsgenieError(503, "Ping not stored: the broker did not acknowledge it; retry") from None
    body = {"result": "PONG - Heartbeat received", "took": _took(request), "requestId": request_id}
    return JSONResponse(body, status_code=202)


class OpsgeniePong(BaseModel):
    result: str
    took: float
    requestId: str


for _method in ("GET", "POST", "PUT", "PATCH"):
    router.add_api_route(
        "/v2/heartbeats/{name}/ping", _opsgenie_ping, methods=[_method], status_code=202,
        responses={202: {"model": OpsgeniePong, "description": "PONG - Heartbeat received"}},
        openapi_extra=_ANY_BODY if _method != "GET" else None,
        operation_id=f"opsgenie_heartbeat_ping_{_method.lower()}",
        summary="Opsgenie: ping a heartbeat (GenieKey integration key)",
    )
