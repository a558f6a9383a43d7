"""Alert intake: native alerts, Alertmanager/Grafana webhooks, PagerDuty Events API v2."""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import catalogue as cat
from shared.auth import Permission, Role
from shared.db.tokens import Principal
from shared.domain.alerts import fingerprint
from shared.messages import NativeAlert

from .errors import ApiError, field_errors
from .formats import alertmanager, pagerduty
from .runtime import Runtime
from .security import principal_for, require

router = APIRouter(tags=["alerts"])

ALERTS_ACCEPTED = Counter("ingestion_alerts_accepted_total", "Alerts accepted with a 2xx", ["endpoint", "integration"])
ALERTS_REFUSED = Counter("ingestion_alerts_refused_total", "Alert requests refused with a 4xx", ["endpoint", "reason"])


class Accepted(BaseModel):
    status: str = "accepted"
    dedup_keys: list[str]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


async def _publish(rt: Runtime, principal: Principal, alerts: list[NativeAlert], endpoint: str) -> list[str]:
    """Stamp, publish and wait for the broker's acknowledgement of every alert (all or nothing)."""
    allowed, wait = rt.take(principal.name, len(alerts))
    if not allowed:
        ALERTS_REFUSED.labels(endpoint, "rate_limited").inc()
        raise ApiError(429, f"rate limit of integration {principal.name!r} exceeded",
                       {"retry_after_seconds": math.ceil(wait)}, headers={"Retry-After": str(math.ceil(wait))})
    now = datetime.now(timezone.utc)
    stamped, keys = [], []
    for alert in alerts:
        full = alert.model_copy(
            update={
                "alert_id": str(uuid.uuid4()),
                "received_at": now,
                "integration": principal.name,
                "source": alert.source or endpoint,
            }
        )
        key = fingerprint(full.to_alert(full.alert_id, now), rt.org)
        stamped.append((key, full))
        keys.append(full.dedup_key or key)
    await rt.producer.send_many(cat.ALERTS_INTAKE.name, stamped)
    ALERTS_ACCEPTED.labels(endpoint, principal.name).inc(len(stamped))
    return keys


_ONE = TypeAdapter(NativeAlert)
_MANY = TypeAdapter(list[NativeAlert])


async def _json_body(request: Request, endpoint: str):
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        ALERTS_REFUSED.labels(endpoint, "not_json").inc()
        raise ApiError(400, "the body is not valid JSON", str(exc)) from None


@router.post(
    "/v1/alerts",
    status_code=202,
    response_model=Accepted,
    summary="Send one native alert or a list of them (integration key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/NativeAlert"},
                {"type": "array", "items": {"$ref": "#/components/schemas/NativeAlert"}, "minItems": 1},
            ]}}},
        }
    },
    responses={400: {"description": "Invalid alert: the error names the field"}},
)
async def post_alerts(request: Request) -> Accepted:
    principal = await require(request, Permission.SEND_ALERTS)
    body = await _json_body(request, "native")
    try:
        alerts = _MANY.validate_python(body) if isinstance(body, list) else [_ONE.validate_python(body)]
    except ValidationError as exc:
        ALERTS_REFUSED.labels("native", "invalid").inc()
        details = field_errors(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in details}))
        raise ApiError(400, f"invalid alert: {fields}", details) from None
    if not alerts:
        ALERTS_REFUSED.labels("native", "empty").inc()
        raise ApiError(400, "no alerts in the request", [])
    return Accepted(dedup_keys=await _publish(_rt(request), principal, alerts, "api"))


@router.post("/v1/integrations/alertmanager", status_code=202, response_model=Accepted,
             summary="Prometheus Alertmanager (payload version 4) or Grafana alerting webhook")
async def post_alertmanager(request: Request, body: alertmanager.AlertmanagerPayload) -> Accepted:
    principal = await require(request, Permission.SEND_ALERTS)
    rt = _rt(request)
    source = "grafana" if body.orgId is not None or body.version == "1" else "alertmanager"
    try:
        natives = alertmanager.to_native(body, rt.integration(principal.name), source)
    except ValidationError as exc:
        ALERTS_REFUSED.labels(source, "invalid").inc()
        raise ApiError(400, "invalid alert in the webhook", field_errors(exc.errors())) from None
    return Accepted(dedup_keys=await _publish(rt, principal, natives, source))


def _pd_error(status: int, message: str, errors: list[str], headers: dict | None = None) -> JSONResponse:
    ALERTS_REFUSED.labels("pagerduty", "invalid" if status == 400 else str(status)).inc()
    return JSONResponse({"status": "invalid event" if status == 400 else "error", "message": message,
                         "errors": errors}, status_code=status, headers=headers)


@router.post(
    "/v2/enqueue",
    status_code=202,
    summary="PagerDuty Events API v2 (routing_key is the integration key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PagerDutyEvent"}}},
        }
    },
    responses={
        202: {"description": "Event processed",
              "content": {"application/json": {"example": {"status": "success", "message": "Event processed",
                                                           "dedup_key": "srv01/HTTP"}}}},
        400: {"description": "Invalid event"},
        429: {"description": "Rate limited"},
    },
)
async def post_pagerduty(request: Request) -> JSONResponse:
    raw = await request.body()
    if len(raw) > pagerduty.MAX_BYTES:
        return _pd_error(413, "Request too large", [f"the event is larger than {pagerduty.MAX_BYTES} bytes"])
    try:
        event = pagerduty.PagerDutyEvent.model_validate_json(raw)
        pagerduty.check(event)
    except ValidationError as exc:
        return _pd_error(400, "Event object is invalid",
                         [f"{d['field']}: {d['message']}" for d in field_errors(exc.errors())])
    except pagerduty.Invalid as exc:
        return _pd_error(400, "Event object is invalid", exc.errors)
    rt = _rt(request)
    principal = await principal_for(rt.pool, rt.tokens, event.routing_key)
    if principal is None or principal.role is not Role.INTEGRATION:
        return _pd_error(400, "Event object is invalid", ["'routing_key' is not a known integration key"])
    dedup_key = pagerduty.dedup_key_for(event)
    try:
        native = pagerduty.to_native(event, dedup_key, rt.integration(principal.name), principal.name)
    except ValidationError as exc:
        return _pd_error(400, "Event object is invalid",
                         [f"{d['field']}: {d['message']}" for d in field_errors(exc.errors())])
    try:
        await _publish(rt, principal, [native], "pagerduty")
    except ApiError as exc:
        if exc.status == 429:
            return JSONResponse({"status": "throttle event", "message": "Requests for this service are arriving too quickly.",
                                 "errors": [exc.error]}, status_code=429, headers=exc.headers)
        raise
    return JSONResponse({"status": "success", "message": "Event processed", "dedup_key": dedup_key}, status_code=202)


def pagerduty_schema() -> dict:
    return pagerduty.PagerDutyEvent.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)


