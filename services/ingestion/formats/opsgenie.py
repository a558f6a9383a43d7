"""Opsgenie Alert API v2 (``/v2/alerts``): create, close, acknowledge and notes.

What Alertmanager's ``opsgenie_configs`` sends (create with ``alias`` = a hash of the
group key and the group's common labels as ``details``; close by alias when the group
resolves) and what typical Opsgenie clients send. An alias is unique per integration
key, like a PagerDuty dedup key per routing key, so it is scoped by the integration
before it becomes the alert's dedup key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Collection
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.domain.alerts import AlertAction
from shared.domain.organisation import SOURCE_SEVERITIES, Integration
from shared.messages import NativeAlert

UNKNOWN_SERVICE = "unknown"
MESSAGE_RUNES = 130  # Opsgenie keeps the first 130 characters of a message
_LABEL_MAX = 4096
ANNOTATION_DETAILS = ("description", "runbook_url", "summary")
Action = Literal["create", "close", "acknowledge", "note"]


def _clip(limit: int):
    def clip(value: Any) -> Any:
        return value[:limit] if isinstance(value, str) else value

    return clip


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, (int, float)) else value


Scalar = Annotated[Union[str, int, float, bool], AfterValidator(_text)]


class Responder(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=50)
    id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    username: str | None = Field(default=None, max_length=200)

    def describe(self) -> str:
        return f"{self.type}:{self.name or self.username or self.id or '?'}"


class OpsgenieAlert(BaseModel):
    """``POST /v2/alerts``: Opsgenie's create-alert body (unknown fields are ignored, as Opsgenie does)."""

    model_config = ConfigDict(extra="allow")

    message: str = Field(min_length=1, pattern=r"\S", description="Kept to its first 130 characters, as Opsgenie does")
    alias: str | None = Field(default=None, max_length=512)
    description: str | None = None
    responders: list[Responder] = Field(default=[], max_length=50)
    visibleTo: list[Responder] = Field(default=[], max_length=50)
    # Opsgenie's details and tags are strings; a number or a boolean is taken as its text.
    actions: list[Scalar] = Field(default=[], max_length=10)
    tags: list[Scalar] = Field(default=[], max_length=20)
    details: dict[str, Scalar] = {}
    entity: str | None = Field(default=None, max_length=512)
    source: str | None = Field(default=None, max_length=100)
    priority: Literal["P1", "P2", "P3", "P4", "P5"] | None = None
    user: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=25000)

    _message = field_validator("message", mode="before")(_clip(MESSAGE_RUNES))
    _description = field_validator("description", mode="before")(_clip(15000))

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Message can not be empty.")
        return value.strip()

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None



class OpsgenieAction(BaseModel):
    """The body of close and acknowledge (every field optional, as in Opsgenie)."""

    model_config = ConfigDict(extra="allow")

    user: str | None = Field(default=None, max_length=100)
    source: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=25000)


class OpsgenieNote(OpsgenieAction):
    note: str = Field(min_length=1, max_length=25000)


class OpsgenieAccepted(BaseModel):
    result: str = "Request will be processed"
    took: float
    requestId: str


class OpsgenieRefused(BaseModel):
    message: str
    errors: dict[str, str] | None = None
    took: float
    requestId: str


def new_request_id() -> str:
    return str(uuid.uuid4())


def alert_id_for(integration_name: str, action: Action, request_id: str) -> str:
    """The id the alert (or note) travels with: the request's status is found by it later."""
    return f"og:{integration_name}:{action}:{request_id}"


def scoped(integration_name: str, alias: str) -> str:
    """The dedup key of an alias: aliases are unique per integration, not across them."""
    if len(alias) + len(integration_name) < 250:
        return f"og:{integration_name}:{alias}"
    return "og:" + hashlib.sha256(f"{integration_name}\x1f{alias}".encode()).hexdigest()


def alias_of(integration_name: str, dedup_key: str) -> str | None:
    prefix = f"og:{integration_name}:"
    return dedup_key[len(prefix):] if dedup_key.startswith(prefix) else None


def alert_id_of(alias: str) -> str:
    """The alert id this API answers with: the alias, reversibly encoded (no lookup needed)."""
    return base64.urlsafe_b64encode(alias.encode("utf-8")).decode("ascii").rstrip("=")


def alias_from_id(alert_id: str) -> str | None:
    try:
        decoded = base64.urlsafe_b64decode(alert_id + "=" * (-len(alert_id) % 4)).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded if decoded and alert_id_of(decoded) == alert_id else None


def _labels(alert: OpsgenieAlert) -> dict[str, str]:
    labels = {str(k)[:200]: v[:_LABEL_MAX] for k, v in alert.details.items() if v.strip()}
    if alert.tags:
        labels.setdefault("tags", ",".join(alert.tags)[:_LABEL_MAX])
    if alert.entity:
        labels.setdefault("entity", alert.entity)
    if alert.responders:
        labels.setdefault("responders", ",".join(r.describe() for r in alert.responders)[:_LABEL_MAX])
    return labels


def _service(labels: dict[str, str], entity: str | None, integration: Integration,
             known_services: Collection[str]) -> str:
    """A label naming the service, an entity naming a known service, the integration's
    default service, then whatever entity was named (the same order as PagerDuty's component)."""
    named = labels.get(integration.label_names.service)
    entity = (entity or "").strip() or None
    known_entity = entity if entity in known_services else None
    for candidate in (named, known_entity, integration.default_service, entity):
        if candidate and candidate.strip():
            return candidate.strip()[:200]
    return UNKNOWN_SERVICE


def _severity(alert: OpsgenieAlert, labels: dict[str, str], integration: Integration) -> str:
    # An explicit priority decides; without one, a severity label (Alertmanager's common
    # labels arrive as details) is more telling than Opsgenie's default P3.
    if alert.priority is None:
        labelled = labels.get(integration.label_names.severity, "").strip().lower()
        if labelled in SOURCE_SEVERITIES:
            return labelled
    return integration.priorities[alert.priority or "P3"]


def create_alert(alert: OpsgenieAlert, alias: str, integration: Integration, integration_name: str,
                 request_id: str, known_services: Collection[str] = ()) -> NativeAlert:
    labels = _labels(alert)
    labels["priority"] = alert.priority or "P3"
    annotations = {name: labels.pop(name) for name in ANNOTATION_DETAILS if name in labels}
    if alert.description:
        annotations["description"] = alert.description[:_LABEL_MAX]
    for name, value in (("note", alert.note), ("user", alert.user), ("opsgenie_source", alert.source)):
        if value:
            annotations[name] = value[:_LABEL_MAX]
    teams = [r.name for r in alert.responders if r.type == "team" and r.name]
    return NativeAlert(
        service=_service(labels, alert.entity, integration, known_services),
        summary=alert.message,
        severity=_severity(alert, labels, integration),
        dedup_key=scoped(integration_name, alias),
        source="opsgenie",
        alert_name=(labels.get("alertname") or alert.message)[:255],
        team=labels.get(integration.label_names.team) or (teams[0][:200] if teams else None),
        labels=labels,
        annotations=annotations,
        alert_id=alert_id_for(integration_name, "create", request_id),
        action=AlertAction.TRIGGER,
    )


def follow_up(action: Literal["close", "acknowledge"], body: OpsgenieAction, alias: str, integration_name: str,
              request_id: str) -> NativeAlert:
    """A close or acknowledge by alias alone: triage finds the incident through the alert's key."""
    annotations = {name: value[:_LABEL_MAX] for name, value in (("note", body.note), ("user", body.user)) if value}
    verb = "closed" if action == "close" else "acknowledged"
    return NativeAlert(
        service=UNKNOWN_SERVICE,
        summary=(body.note or f"{verb} through the Opsgenie API")[:1024],
        status="resolved" if action == "close" else "firing",
        dedup_key=scoped(integration_name, alias),
        source="opsgenie",
        annotations=annotations,
        alert_id=alert_id_for(integration_name, action, request_id),
        action=AlertAction.RESOLVE if action == "close" else AlertAction.ACKNOWLEDGE,
    )
