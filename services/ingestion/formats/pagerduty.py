"""PagerDuty Events API v2 (``POST /v2/enqueue``): trigger, acknowledge, resolve.

The routing key names the integration (its key is the credential); dedup keys are
unique per routing key, so they are scoped by the integration before they
become the alert's fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.domain.alerts import AlertAction, Link
from shared.domain.organisation import Integration
from shared.messages import NOT_BLANK, NativeAlert

MAX_BYTES = 512 * 1024
UNKNOWN_SERVICE = "unknown"
_LABEL_MAX = 4096
ANNOTATION_DETAILS = ("description", "runbook_url")


class PagerDutyPayload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # At least one non-space character: the alert made from it strips whitespace.
    summary: str = Field(min_length=1, max_length=1024, pattern=NOT_BLANK)
    source: str = Field(min_length=1, max_length=255, pattern=NOT_BLANK)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    # "class" is a Python keyword.
    class_: str | None = Field(default=None, alias="class", max_length=255)
    custom_details: Any = None

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # Not a Unix time: the format says ISO 8601, and a number would be read as one silently.
        if value is not None and not isinstance(value, str):
            raise ValueError("expected an ISO 8601 timestamp string")
        return value


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

    @model_validator(mode="before")
    @classmethod
    def _lenient(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("dedup_key") == "":
            data["dedup_key"] = None  # PagerDuty treats an empty key as no key
        # Only a trigger uses the payload: an acknowledge or resolve is never
        # refused because of what it carries beside its dedup key.
        if data.get("event_action") in ("acknowledge", "resolve") and data.get("payload") is not None:
            try:
                PagerDutyPayload.model_validate(data["payload"])
            except ValidationError:
                data["payload"] = None
        return data


class PagerDutyAccepted(BaseModel):
    status: Literal["success"] = "success"
    message: str = "Event processed"
    dedup_key: str


class PagerDutyRefused(BaseModel):
    status: str = Field(description="'invalid event' (400, 413) or 'throttle event' (429)")
    message: str
    errors: list[str]


class Invalid(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def check(event: PagerDutyEvent) -> None:
    errors = []
    if event.event_action == "trigger" and event.payload is None:
        errors.append("payload: required for a trigger (summary, source and severity)")
    if event.event_action in ("acknowledge", "resolve") and not event.dedup_key:
        errors.append(f"dedup_key: required for {event.event_action}")
    if errors:
        raise Invalid(errors)


def dedup_key_for(event: PagerDutyEvent) -> str:
    return event.dedup_key or uuid.uuid4().hex


def _details_labels(details: Any) -> dict[str, str]:
    if not isinstance(details, dict):
        return {}
    return {
        str(k)[:200]: str(v)[:_LABEL_MAX]
        for k, v in details.items()
        if isinstance(v, (str, int, float, bool)) and str(v).strip()
    }


def _service(labels: dict[str, str], payload: PagerDutyPayload | None, integration: Integration,
             known_services: Collection[str]) -> str:
    """Where the alert belongs: an explicit label, a component naming a known service,
    the integration's default service, then whatever component it named."""
    if payload is None:
        # An acknowledge or resolve by key alone: triage completes it from the trigger.
        return UNKNOWN_SERVICE
    named = labels.get(integration.label_names.service)
    component = (payload.component or "").strip() or None
    known_component = component if component in known_services else None
    for candidate in (named, known_component, integration.default_service, component):
        if candidate and candidate.strip():
            return candidate.strip()[:200]
    return UNKNOWN_SERVICE


def to_native(event: PagerDutyEvent, dedup_key: str, integration: Integration, integration_name: str,
              known_services: Collection[str] = ()) -> NativeAlert:
    action = AlertAction(event.event_action)
    payload = event.payload
    labels = _details_labels(payload.custom_details) if payload else {}
    names = integration.label_names
    service = _service(labels, payload, integration, known_services)
    alert_name = (payload.class_ if payload and payload.class_ else None) or labels.get("alertname")
    annotations: dict[str, str] = {}
    if payload:
        labels.setdefault("source", payload.source)
        if payload.group:
            labels.setdefault("group", payload.group)
        if payload.component:
            labels.setdefault("component", payload.component)
        annotations["summary"] = payload.summary
        # Details named like Alertmanager's annotations travel as annotations (runbook, description).
        for name in ANNOTATION_DETAILS:
            if name in labels:
                annotations[name] = labels.pop(name)
        if payload.custom_details is not None:
            annotations["custom_details"] = json.dumps(payload.custom_details, default=str)[:_LABEL_MAX]
    links = [Link(href=link.href, text=link.text) for link in event.links if link.href.strip()]
    if event.client_url:
        links.append(Link(href=event.client_url, text=event.client or "client"))
    return NativeAlert(
        service=service,
        # Acknowledge and resolve may carry no payload: the dedup key alone names the alert.
        summary=payload.summary if payload else f"{event.event_action} {dedup_key}"[:1024],
        status="resolved" if action is AlertAction.RESOLVE else "firing",
        severity=payload.severity if payload else None,
        dedup_key=scoped(integration_name, dedup_key),
        source=(payload.source if payload else "pagerduty-events-v2")[:255],
        alert_name=alert_name[:255] if alert_name else None,
        team=labels.get(names.team),
        labels=labels,
        annotations=annotations,
        starts_at=payload.timestamp if payload and payload.timestamp and payload.timestamp.tzinfo else None,
        links=links,
        action=action,
    )


def scoped(integration_name: str, dedup_key: str) -> str:
    # PagerDuty dedup keys are unique per routing key (integration), not globally.
    if len(dedup_key) + len(integration_name) < 250:
        return f"pd:{integration_name}:{dedup_key}"
    return "pd:" + hashlib.sha256(f"{integration_name}\x1f{dedup_key}".encode()).hexdigest()
