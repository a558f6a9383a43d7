"""Alert intake: native alerts, Alertmanager/Grafana webhooks, PagerDuty Events API v2.

Each handler takes the runtime, the Authorization header and the request body, and
returns an Answer. edge.py serves them straight from ASGI, past FastAPI's routing,
dependencies and middleware (the hot path during a storm); intake_routes.py declares
the same handlers to FastAPI for the OpenAPI document.
"""
from __future__ import annotations

import logging
import math
import os
import re
from datetime import datetime, timezone

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import Counter
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from shared import catalogue as cat
from shared.auth import Permission, Role
from shared.db.tokens import Principal
from shared.domain.alerts import correlation_key_of, fingerprint_of, needs_lookup_of
from shared.domain.classification import restricted_alert
from shared.domain.organisation import Organisation
from shared.kafka.json_producer import BrokerUnavailable
from shared.messages import NativeAlert

from .body import Answer, Body
from .errors import ApiError, field_errors
from .formats import alertmanager, pagerduty
from .runtime import Runtime
from .security import authorize, principal_for

log = logging.getLogger("ingestion.intake")

ALERTS_ACCEPTED = Counter("ingestion_alerts_accepted_total", "Alerts accepted with a 2xx", ["endpoint", "integration"])
ALERTS_REFUSED = Counter("ingestion_alerts_refused_total", "Alert requests refused with a 4xx", ["endpoint", "reason"])
# One request of native alerts or one webhook group; PagerDuty has its own 512 KB.
MAX_REQUEST_BYTES = 5 * 1024 * 1024
# Alertmanager and Grafana retry a 5xx but drop the group on a 429, so a throttled webhook
# answers 503 (with Retry-After); the native API and PagerDuty Events answer 429 as
# PagerDuty and Opsgenie do.
_THROTTLED_STATUS = {"alertmanager": 503, "grafana": 503}

_ONE = TypeAdapter(NativeAlert)
_MANY = TypeAdapter(list[NativeAlert])
_A_LIST = re.compile(rb"[ \t\r\n]*\[")


def _throttle(rt: Runtime, principal: Principal, count: int, endpoint: str) -> None:
    allowed, wait = rt.take(principal.name, count)
    if not allowed:
        ALERTS_REFUSED.labels(endpoint, "rate_limited").inc()
        seconds = max(1, math.ceil(wait))
        limit = rt.integration(principal.name).rate_limit_per_minute
        raise ApiError(_THROTTLED_STATUS.get(endpoint, 429),
                       f"rate limit of integration {principal.name!r} exceeded ({limit} alerts per minute); "
                       f"retry after {seconds} s", {"retry_after_seconds": seconds},
                       headers={"Retry-After": str(seconds)})


async def _publish(rt: Runtime, principal: Principal, alerts: list[NativeAlert], endpoint: str,
                   keep_alert_ids: bool = False) -> list[str]:
    """Stamp, publish and wait for the broker's acknowledgement of every alert; their dedup keys.

    ``keep_alert_ids``: the format set each alert's id (an Opsgenie request is found by it later).
    """
    _throttle(rt, principal, len(alerts), endpoint)
    now = datetime.now(timezone.utc)
    messages, keys = [], []
    for alert, alert_id in zip(alerts, _alert_ids(len(alerts))):
        # The parsed request's own objects, stamped in place (a model_copy per alert cost more
        # than the validation that made them).
        if not (keep_alert_ids and alert.alert_id):
            alert.alert_id = alert_id
        alert.received_at = now
        alert.integration = principal.name
        alert.source = alert.source or endpoint
        if alert.starts_at is not None and alert.starts_at > now:
            # A start in the future (a skewed clock, or Alertmanager given only endsAt) would
            # make detection later than resolution: the problem was seen now at the latest.
            alert.starts_at = now
        name = alert.alert_name or alert.labels.get("alertname") or alert.summary
        fp = fingerprint_of(alert.dedup_key, alert.service, name, alert.labels, rt.org)
        key = topic_key(alert, name, fp, rt.org)
        messages.append((key.encode(), alert.__pydantic_serializer__.to_json(alert)))
        keys.append(alert.dedup_key or fp)
    try:
        await rt.producer.send_encoded(cat.ALERTS_INTAKE.name, messages)
    except MessageSizeTooLargeError:
        ALERTS_REFUSED.labels(endpoint, "too_large").inc()
        raise ApiError(413, "an alert is larger than the broker accepts; send fewer or shorter labels", None) from None
    except KafkaError as exc:
        # The sender should retry (Alertmanager and PagerDuty clients do on a 5xx). An outage
        # is logged by the producer as it starts and ends, not here once per request.
        if not isinstance(exc, BrokerUnavailable):
            log.warning("intake not acknowledged by Kafka: %r", exc)
        raise ApiError(503, "alerts not stored: the broker did not acknowledge them; retry", None,
                       headers={"Retry-After": "1"}) from None
    ALERTS_ACCEPTED.labels(endpoint, principal.name).inc(len(messages))
    return keys


def topic_key(alert: NativeAlert, name: str, fp: str, org: Organisation) -> str:
    """The intake topic's key: the correlation key, so that triage folds the alert on the
    partition it lands on; the fingerprint for an alert whose follow-ups may name only
    their dedup key (triage looks up where its trigger went)."""
    if needs_lookup_of(alert.dedup_key, alert.source):
        return fp
    restricted = restricted_alert(alert.service, name, alert.severity, alert.labels, alert.annotations, org)
    return correlation_key_of(alert.service, name, alert.labels, fp, org, restricted)


def _alert_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, from one read of the system's randomness
    (uuid.uuid4() per alert was a tenth of the cost of a storm's alert)."""
    h = os.urandom(16 * count).hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17:i + 20]}-"
            f"{h[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]


_VARIANT = "89ab"


def _accepted(keys: list[str]) -> Answer:
    return Answer(202, to_json({"status": "accepted", "dedup_keys": keys}))


def _invalid_json(exc: ValidationError, endpoint: str) -> None:
    errors = exc.errors()
    if errors and errors[0]["type"] == "json_invalid":
        # pydantic's parser, not json.loads: deep nesting is this error, not a RecursionError.
        ALERTS_REFUSED.labels(endpoint, "not_json").inc()
        raise ApiError(400, "the body is not valid JSON", errors[0]["msg"]) from None


async def native(rt: Runtime, authorization: str, body: Body, client: str = "") -> Answer:
    """POST /v1/alerts: one native alert or a list of them."""
    principal = await authorize(rt.pool, rt.tokens, authorization, Permission.SEND_ALERTS, client)
    raw = await body.read("native", MAX_REQUEST_BYTES, ALERTS_REFUSED)
    try:
        # Strict JSON: a timestamp must be RFC 3339 text, not a number read as Unix time.
        alerts = _MANY.validate_json(raw, strict=True) if _A_LIST.match(raw) else [_ONE.validate_json(raw, strict=True)]
    except ValidationError as exc:
        _invalid_json(exc, "native")
        ALERTS_REFUSED.labels("native", "invalid").inc()
        details = field_errors(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in details}))
        raise ApiError(400, f"invalid alert: {fields}", details) from None
    if not alerts:
        ALERTS_REFUSED.labels("native", "empty").inc()
        raise ApiError(400, "no alerts in the request", [])
    return _accepted(await _publish(rt, principal, alerts, "api"))


async def alertmanager_webhook(rt: Runtime, authorization: str, body: Body, client: str = "") -> Answer:
    """POST /v1/integrations/alertmanager: an Alertmanager (version 4) or Grafana webhook."""
    try:
        principal = await authorize(rt.pool, rt.tokens, authorization, Permission.SEND_ALERTS, client)
    except ApiError as exc:
        if exc.status != 429:
            raise
        # Slowed after failed authentication: Alertmanager drops a group answered 429, retries a 503.
        raise ApiError(_THROTTLED_STATUS["alertmanager"], exc.error, exc.detail, headers=exc.headers) from None
    raw = await body.read("alertmanager", MAX_REQUEST_BYTES, ALERTS_REFUSED)
    try:
        payload = alertmanager.AlertmanagerPayload.model_validate_json(raw)
    except ValidationError as exc:
        _invalid_json(exc, "alertmanager")
        ALERTS_REFUSED.labels("alertmanager", "invalid").inc()
        details = field_errors(exc.errors())
        fields = ", ".join(sorted({d["field"] for d in details})[:5])
        raise ApiError(400, f"invalid webhook: {fields}", details) from None
    try:
        natives = alertmanager.to_native(payload, rt.integration(principal.name))
    except ValidationError as exc:
        ALERTS_REFUSED.labels(payload.source, "invalid").inc()
        raise ApiError(400, "invalid alert in the webhook", field_errors(exc.errors())) from None
    if payload.truncatedAlerts:
        log.warning("%s %s truncated %d alerts (max_alerts)", payload.source, payload.receiver, payload.truncatedAlerts)
    return _accepted(await _publish(rt, principal, natives, payload.source))


def _pd_answer(status: int, message: str, errors: list[str], headers: dict | None = None) -> Answer:
    reason = {400: "invalid", 413: "too_large", 429: "rate_limited"}.get(status, str(status))
    if status != 429:
        ALERTS_REFUSED.labels("pagerduty", reason).inc()
    label = {429: "throttle event"}.get(status, "invalid event" if status < 500 else "error")
    return Answer(status, to_json({"status": label, "message": message, "errors": errors}), headers)


def _pd_invalid(exc: ValidationError) -> Answer:
    return _pd_answer(400, "Event object is invalid",
                      [f"{d['field']}: {d['message']}" for d in field_errors(exc.errors())])


async def pagerduty_events(rt: Runtime, authorization: str, body: Body, client: str = "") -> Answer:
    """POST /v2/enqueue: PagerDuty Events API v2, answering as PagerDuty does."""
    try:
        raw = await body.read("pagerduty", pagerduty.MAX_BYTES)
    except ApiError:
        return _pd_answer(413, "Request too large", [f"the event is larger than {pagerduty.MAX_BYTES} bytes (512 KB)"])
    try:
        event = pagerduty.PagerDutyEvent.model_validate_json(raw)
        pagerduty.check(event)
    except ValidationError as exc:
        return _pd_invalid(exc)
    except pagerduty.Invalid as exc:
        return _pd_answer(400, "Event object is invalid", exc.errors)
    try:
        principal = await principal_for(rt.pool, rt.tokens, event.routing_key, client)
    except ApiError as exc:
        return _pd_answer(exc.status, exc.error, [], headers=exc.headers)
    if principal is None or principal.role is not Role.INTEGRATION:
        return _pd_answer(400, "Event object is invalid", ["routing_key: not a known integration key"])
    dedup_key = pagerduty.dedup_key_for(event)
    try:
        native_alert = pagerduty.to_native(event, dedup_key, rt.integration(principal.name), principal.name,
                                           rt.org.services.keys())
    except ValidationError as exc:
        return _pd_invalid(exc)
    try:
        await _publish(rt, principal, [native_alert], "pagerduty")
    except ApiError as exc:
        if exc.status == 429:
            return _pd_answer(429, "Requests for this service are arriving too quickly. Please retry later.",
                              [exc.error], headers=exc.headers)
        return _pd_answer(exc.status, exc.error, [], headers=exc.headers)
    return Answer(202, pagerduty.PagerDutyAccepted(dedup_key=dedup_key).model_dump_json().encode())
