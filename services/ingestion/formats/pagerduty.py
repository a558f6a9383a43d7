"""PagerDuty Events API v2 (``POST /v2/enqueue``): trigger, acknowledge, resolve."""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.alerts import AlertAction, Link
from shared.domain.organisation import Integration
from shared.messages import NativeAlert

MAX_BYTES = 512 * 1024


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    # "class" is a Python keyword.
    class_: str | None = Field(default=None, alias="class")
    custom_details: Any = None


class PagerDutyLink(BaseModel):
    href: str
    text: str | None = None


class PagerDutyEvent(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    routing_key: str = Field(min_length=32, max_length=32)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: PagerDutyPayload | None = None
    client: str | None = None
    client_url: str | None = None
    links: list[PagerDutyLink] = []
    images: list[dict] = []


class Invalid(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def check(event: PagerDutyEvent) -> None:
    errors = []
    if event.event_action == "trigger" and event.payload is None:
        errors.append("'payload' is missing or null")
    if event.event_action in ("acknowledge", "resolve") and not event.dedup_key:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if errors:
        raise Invalid(errors)


def dedup_key_for(event: PagerDutyEvent) -> str:
    return event.dedup_key or uuid.uuid4().hex


def _details_labels(details: Any) -> dict[str, str]:
    if not isinstance(details, dict):
        return {}
    return {str(k)[:200]: str(v)[:4096] for k, v in details.items() if isinstance(v, (str, int, float, bool))}


def to_native(event: PagerDutyEvent, dedup_key: str, integration: Integration, integration_name: str) -> NativeAlert:
    action = AlertAction(event.event_action)
    payload = event.payload
    labels = _details_labels(payload.custom_details) if payload else {}
    names = integration.label_names
    service = (
        labels.get(names.service)
        or (payload.component if payload and payload.component else None)
        or integration.default_service
        or (payload.source if payload else None)
        or "unknown"
    )
    alert_name = (payload.class_ if payload and payload.class_ else None) or labels.get("alertname")
    if payload and payload.group:
        labels.setdefault("group", payload.group)
    if payload:
        labels.setdefault("source", payload.source)
    links = [Link(href=l.href, text=l.text) for l in event.links]
    if event.client_url:
        links.append(Link(href=event.client_url, text=event.client or "client"))
    # Acknowledge and resolve may carry no payload: the dedup key alone names the alert.
    summary = payload.summary if payload else f"{event.event_action} {dedup_key}"
    return NativeAlert(
        service=service[:200],
        summary=summary,
        status="resolved" if action is AlertAction.RESOLVE else "firing",
        severity=payload.severity if payload else None,
        dedup_key=_scoped(integration_name, dedup_key),
        source=(payload.source if payload else "pagerduty-events-v2")[:255],
        alert_name=alert_name,
        team=labels.get(names.team),
        labels=labels,
        starts_at=payload.timestamp if payload and payload.timestamp and payload.timestamp.tzinfo else None,
        links=links,
        action=action,
    )


def _scoped(integration_name: str, dedup_key: str) -> str:
    # PagerDuty dedup keys are unique per routing key (integration), not globally.
    if len(dedup_key) + len(integration_name) < 250:
        return f"pd:{integration_name}:{dedup_key}"
    return "pd:" + hashlib.sha256(f"{integration_name}\x1f{dedup_key}".encode()).hexdigest()
