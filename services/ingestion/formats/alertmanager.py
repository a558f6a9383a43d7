"""Prometheus Alertmanager webhook (payload version 4) and Grafana alerting webhooks.

Both send the same envelope; Grafana adds ``orgId``, ``version: "1"`` and a few
per-alert fields. Each alert is handled by its own status (a group notification
can mix firing and resolved alerts) and keeps its source fingerprint as the
dedup key.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shared.domain.alerts import Link
from shared.domain.organisation import SOURCE_SEVERITIES, Integration
from shared.messages import NativeAlert

# Alertmanager's "no end yet" (Go's zero time).
_ZERO_TIME = "0001-01-01"
UNKNOWN_SERVICE = "unknown"
# The NativeAlert limits: a real webhook is clipped to them rather than refused,
# because Alertmanager does not retry a 4xx and the whole group would be lost.
_MAX = {"service": 200, "summary": 1024, "name": 255, "team": 200, "label": 4096, "key": 255}


def _json_integer(value: Any) -> Any:
    # A JSON integer (140 or 140.0), never true or "140", which lax parsing would take.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(value)


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    # Factories, not {} defaults: pydantic deep-copies a mutable default for every alert.
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = ""
    fingerprint: str | None = None
    # Grafana's extras.
    silenceURL: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    imageURL: str | None = None
    values: dict | None = None
    valueString: str | None = None

    @field_validator("startsAt", "endsAt", mode="before")
    @classmethod
    def _zero_is_none(cls, value):
        # A firing alert carries endsAt "0001-01-01T00:00:00Z": no end yet.
        if isinstance(value, str) and value.startswith(_ZERO_TIME):
            return None
        if value is not None and not isinstance(value, str):
            # Not a Unix time: the format says RFC 3339, and a number would be read as one silently.
            raise ValueError("expected an RFC 3339 timestamp string")
        return value

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str = "4"
    groupKey: str | None = None
    truncatedAlerts: JsonInt = Field(default=0, ge=0)
    status: Literal["firing", "resolved"] | None = None
    receiver: str | None = None
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    orgId: JsonInt | None = None  # Grafana

    @property
    def source(self) -> str:
        return "grafana" if self.orgId is not None or self.version == "1" else "alertmanager"


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] if value else None


def _severity(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in SOURCE_SEVERITIES else None


def _dedup_key(fingerprint: str | None) -> str | None:
    fingerprint = (fingerprint or "").strip()
    if not fingerprint:
        return None
    if len(fingerprint) <= _MAX["key"]:
        return fingerprint
    return "fp:" + hashlib.sha256(fingerprint.encode()).hexdigest()


def _links(alert: AlertmanagerAlert, annotations: dict[str, str]) -> list[Link]:
    candidates = [
        (alert.generatorURL, "source"),
        (annotations.get("runbook_url"), "runbook"),
        (alert.dashboardURL, "dashboard"),
        (alert.panelURL, "panel"),
        (alert.silenceURL, "silence"),
        (alert.imageURL, "image"),
    ]
    return [Link(href=href.strip(), text=text) for href, text in candidates if href and href.strip()]


def to_native(payload: AlertmanagerPayload, integration: Integration) -> list[NativeAlert]:
    """One native alert per webhook alert, mapped by the integration's label names."""
    names = integration.label_names
    source = payload.source
    out = []
    for alert in payload.alerts:
        labels = {key: value[: _MAX["label"]] for key, value in alert.labels.items()}
        annotations = {key: value[: _MAX["label"]] for key, value in alert.annotations.items()}
        alertname = _clip(labels.get("alertname"), _MAX["name"])
        service = (
            _clip(labels.get(names.service), _MAX["service"])
            or _clip(integration.default_service, _MAX["service"])
            or UNKNOWN_SERVICE
        )
        summary = (
            _clip(annotations.get("summary"), _MAX["summary"])
            or _clip(annotations.get("description"), _MAX["summary"])
            or alertname
            or f"{source} alert on {service}"
        )
        out.append(
            NativeAlert(
                service=service,
                summary=summary,
                status=alert.status,
                severity=_severity(labels.get(names.severity)),
                dedup_key=_dedup_key(alert.fingerprint),
                source=source,
                alert_name=alertname,
                team=_clip(labels.get(names.team), _MAX["team"]),
                labels=labels,
                annotations=annotations,
                starts_at=alert.startsAt,
                ends_at=alert.endsAt,
                links=_links(alert, annotations),
            )
        )
    return out
