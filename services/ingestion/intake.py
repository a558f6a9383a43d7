"""Alert intake: native alerts, Alertmanager/Grafana webhooks, PagerDuty Events API v2."""
from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timezone

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json

from shared import catalogue as cat
from shared.auth import Permission, Role
from shared.db.tokens import Principal
from shared.domain.alerts import Alert, correlation_key, fingerprint, needs_lookup
from shared.domain.organisation import Organisation
from shared.messages import NativeAlert

from .errors import ApiError, field_errors
from .formats import alertmanager, pagerduty
from .runtime import Runtime
from .security import principal_for, require

log = logging.getLogger("ingestion.intake")
router = APIRouter(tags=["alerts"])

ALERTS_ACCEPTED = Counter("ingestion_alerts_accepted_total", "Alerts accepted with a 2xx", ["endpoint", "integration"])
ALERTS_REFUSED = Counter("ingestion_alerts_refused_total", "Alert requests refused with a 4xx", ["endpoint", "reason"])
# One request of native alerts or one webhook group; PagerDuty has its own 512 KB.
MAX_REQUEST_BYTES = 5 * 1024 * 1024


class Accepted(BaseModel):
    status: str = "accepted"
    dedup_keys: list[str]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def _throttle(rt: Runtime, principal: Principal, count: int, endpoint: str) -> None:
    allowed, wait = rt.take(principal.name, count)
    if not allowed:
        ALERTS_REFUSED.labels(endpoint, "rate_limited").inc()
        seconds = max(1, math.ceil(wait))
        limit = rt.integration(principal.name).rate_limit_per_minute
        raise ApiError(429, f"rate limit of integration {principal.name!r} exceeded ({limit} alerts per minute)",
                       {"retry_after_seconds": seconds}, headers={"Retry-After": str(seconds)})


async def _publish(rt: Runtime, principal: Principal, alerts: list[NativeAlert], endpoint: str,
                   keep_alert_ids: bool = False) -> list[str]:
    """Stamp, publish and wait for the broker's acknowledgement of every alert.

    ``keep_alert_ids``: the format set each alert's id (an Opsgenie request is found by it later).
    """
    _throttle(rt, principal, len(alerts), endpoint)
    now = datetime.now(timezone.utc)
    stamped, keys = [], []
    for alert in alerts:
        update = {
            "alert_id": alert.alert_id if keep_alert_ids and alert.alert_id else str(uuid.uuid4()),
            "received_at": now,
            "integration": principal.name,
            "source": alert.source or endpoint,
        }
        if alert.starts_at is not None and alert.starts_at > now:
            # A start in the future (a skewed clock, or Alertmanager given only endsAt) would
            # make detection later than resolution: the problem was seen now at the latest.
            update["starts_at"] = now
        full = alert.model_copy(update=update)
        normalised = full.to_alert(full.alert_id, now)
        fp = fingerprint(normalised, rt.org)
        stamped.append((topic_key(normalised, fp, rt.org), full))
        keys.append(full.dedup_key or fp)
    try:
        await rt.producer.send_many(cat.ALERTS_INTAKE.name, stamped)
    except MessageSizeTooLargeError:
        ALERTS_REFUSED.labels(endpoint, "too_large").inc()
        raise ApiError(413, "an alert is larger than the broker accepts; send fewer or shorter labels", None) from None
    except KafkaError as exc:
        # The sender should retry (Alertmanager and PagerDuty clients do on a 5xx).
        log.warning("intake not acknowledged by Kafka: %r", exc)
        raise ApiError(503, "alerts not stored: the broker did not acknowledge them; retry", None) from None
    ALERTS_ACCEPTED.labels(endpoint, principal.name).inc(len(stamped))
    return keys


def topic_key(alert: Alert, fp: str, org: Organisation) -> str:
    """The intake topic's key: the correlation key, so that triage folds the alert on the
    partition it lands on; the fingerprint for an alert whose follow-ups may name only
    their dedup key (triage looks up where its trigger went)."""
    return fp if needs_lookup(alert) else correlation_key(alert, org)


_ONE = TypeAdapter(NativeAlert)
_MANY = TypeAdapter(list[NativeAlert])


def _parse(raw: bytes, endpoint: str):
    try:
        # pydantic's parser, not json.loads: deep nesting is an error here, not a RecursionError.
        return from_json(raw)
    except ValueError as exc:
        ALERTS_REFUSED.labels(endpoint, "not_json").inc()
        raise ApiError(400, "the body is not valid JSON", str(exc)) from None


async def _raw_body(request: Request, endpoint: str, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        ALERTS_REFUSED.labels(endpoint, "too_large").inc()
        raise ApiError(413, f"the request is larger than {limit} bytes", {"limit_bytes": limit})
    raw = await request.body()
    if len(raw) > limit:
        ALERTS_REFUSED.labels(endpoint, "too_large").inc()
        raise ApiError(413, f"the request is larger than {limit} bytes", {"limit_bytes": limit})
    return raw


def _body_schema(ref: str) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}}


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
)
async def post_alerts(request: Request) -> Accepted:
    principal = await require(request, Permission.SEND_ALERTS)
    raw = await _raw_body(request, "native", MAX_REQUEST_BYTES)
    body = _parse(raw, "native")
    try:
        # Strict JSON: a timestamp must be RFC 3339 text, not a number read as Unix time.
        if isinstance(body, list):
            alerts = _MANY.validate_json(raw, strict=True)
        else:
            alerts = [_ONE.validate_json(raw, strict=True)]
    except ValidationError as exc:
        ALERTS_REFUSED.labels("native", "invalid").inc()
        details = field_errors(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in details}))
        raise ApiError(400, f"invalid alert: {fields}", details) from None
    if not alerts:
        ALERTS_REFUSED.labels("native", "empty").inc()
        raise ApiError(400, "no alerts in the request", [])
    return Accepted(dedup_keys=await _publish(_rt(request), principal, alerts, "api"))


@router.post(
    "/v1/integrations/alertmanager",
    status_code=202,
    response_model=Accepted,
    summary="Prometheus Alertmanager (payload version 4) or Grafana alerting webhook (integration key)",
    description=(
        "Each alert is handled by its own status; the alert's fingerprint is its dedup key. The integration's "
        "`label_names` say which labels name the service, team and severity (defaults `service`, `team`, "
        "`severity`); the annotations `summary`, `description` and `runbook_url` travel with the incident."
    ),
    openapi_extra=_body_schema("#/components/schemas/AlertmanagerPayload"),
)
async def post_alertmanager(request: Request) -> Accepted:
    principal = await require(request, Permission.SEND_ALERTS)
    raw = await _raw_body(request, "alertmanager", MAX_REQUEST_BYTES)
    _parse(raw, "alertmanager")
    try:
        body = alertmanager.AlertmanagerPayload.model_validate_json(raw)
    except ValidationError as exc:
        ALERTS_REFUSED.labels("alertmanager", "invalid").inc()
        details = field_errors(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in details})[:5])
        raise ApiError(400, f"invalid webhook: {fields}", details) from None
    rt = _rt(request)
    try:
        natives = alertmanager.to_native(body, rt.integration(principal.name))
    except ValidationError as exc:
        ALERTS_REFUSED.labels(body.source, "invalid").inc()
        raise ApiError(400, "invalid alert in the webhook", field_errors(exc.errors())) from None
    if body.truncatedAlerts:
        log.warning("%s %s truncated %d alerts (max_alerts)", body.source, body.receiver, body.truncatedAlerts)
    return Accepted(dedup_keys=await _publish(rt, principal, natives, body.source))


def _pd_answer(status: int, message: str, errors: list[str], headers: dict | None = None) -> JSONResponse:
    reason = {400: "invalid", 413: "too_large", 429: "rate_limited"}.get(status, str(status))
    if status != 429:
        ALERTS_REFUSED.labels("pagerduty", reason).inc()
    label = {429: "throttle event"}.get(status, "invalid event" if status < 500 else "error")
    return JSONResponse({"status": label, "message": message, "errors": errors}, status_code=status, headers=headers)


def _pd_invalid(exc: ValidationError) -> JSONResponse:
    return _pd_answer(400, "Event object is invalid",
                      [f"{d['field']}: {d['message']}" for d in field_errors(exc.errors())])


@router.post(
    "/v2/enqueue",
    status_code=202,
    response_model=pagerduty.PagerDutyAccepted,
    summary="PagerDuty Events API v2 (routing_key is the integration key)",
    description=(
        "`trigger`, `acknowledge` and `resolve` as PagerDuty defines them: a trigger without `dedup_key` gets one, "
        "returned in the answer; acknowledge and resolve need only the `dedup_key`. At most 512 KB."
    ),
    openapi_extra=_body_schema("#/components/schemas/PagerDutyEvent"),
)
async def post_pagerduty(request: Request) -> JSONResponse:
    try:
        raw = await _raw_body(request, "pagerduty", pagerduty.MAX_BYTES)
    except ApiError:
        return _pd_answer(413, "Request too large", [f"the event is larger than {pagerduty.MAX_BYTES} bytes (512 KB)"])
    try:
        event = pagerduty.PagerDutyEvent.model_validate_json(raw)
        pagerduty.check(event)
    except ValidationError as exc:
        return _pd_invalid(exc)
    except pagerduty.Invalid as exc:
        return _pd_answer(400, "Event object is invalid", exc.errors)
    rt = _rt(request)
    principal = await principal_for(rt.pool, rt.tokens, event.routing_key)
    if principal is None or principal.role is not Role.INTEGRATION:
        return _pd_answer(400, "Event object is invalid", ["routing_key: not a known integration key"])
    dedup_key = pagerduty.dedup_key_for(event)
    try:
        native = pagerduty.to_native(event, dedup_key, rt.integration(principal.name), principal.name,
                                     rt.org.services.keys())
    except ValidationError as exc:
        return _pd_invalid(exc)
    try:
        await _publish(rt, principal, [native], "pagerduty")
    except ApiError as exc:
        if exc.status == 429:
            return _pd_answer(429, "Requests for this service are arriving too quickly. Please retry later.",
                              [exc.error], headers=exc.headers)
        return _pd_answer(exc.status, exc.error, [])
    return JSONResponse(pagerduty.PagerDutyAccepted(dedup_key=dedup_key).model_dump(), status_code=202)
