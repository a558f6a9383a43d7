"""Prometheus Alertmanager webhook (payload version 4) and Grafana alerting webhooks."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.alerts import Link
from shared.domain.organisation import Integration
from shared.messages import NativeAlert

_ZERO_TIME = "0001-01-01"


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str | None = ""
    fingerprint: str | None = None
    # Grafana extras
    silenceURL: str | None = None
    dashboardURL: str | None = None
    panelURL: str | None = None
    values: dict | None = None

    @field_validator("startsAt", "endsAt", mode="before")
    @classmethod
    def _zero_is_none(cls, value):
        # A firing alert carries endsAt "0001-01-01T00:00:00Z": no end yet.
        if isinstance(value, str) and value.startswith(_ZERO_TIME):
            return None
        return value


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str = "4"
    groupKey: str | None = None
    truncatedAlerts: int = 0
    status: str | None = None
    receiver: str | None = None
    groupLabels: dict[str, str] = {}
    commonLabels: dict[str, str] = {}
    commonAnnotations: dict[str, str] = {}
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert] = Field(min_length=1)
    orgId: int | None = None  # Grafana


def to_native(payload: AlertmanagerPayload, integration: Integration, source: str) -> list[NativeAlert]:
    """Each alert by its own status; the Alertmanager fingerprint is the dedup key."""
    names = integration.label_names
    out = []
    for alert in payload.alerts:
        labels = dict(alert.labels)
        annotations = dict(alert.annotations)
        service = labels.get(names.service) or integration.default_service or "unknown"
        severity = labels.get(names.severity)
        summary = (
            annotations.get("summary")
            or annotations.get("description")
            or labels.get("alertname")
            or "alert without summary"
        )
        links = []
        if alert.generatorURL:
            links.append(Link(href=alert.generatorURL, text="source"))
        if annotations.get("runbook_url"):
            links.append(Link(href=annotations["runbook_url"], text="runbook"))
        dedup = alert.fingerprint or None
        out.append(
            NativeAlert(
                service=service[:200],
                summary=summary[:1024],
                status="resolved" if alert.status == "resolved" else "firing",
                severity=severity if severity in ("critical", "error", "warning", "info") else None,
                dedup_key=dedup,
                source=source,
                alert_name=labels.get("alertname"),
                team=labels.get(names.team),
                labels=labels,
                annotations=annotations,
                starts_at=alert.startsAt,
                ends_at=alert.endsAt,
                links=links,
            )
        )
    return out
