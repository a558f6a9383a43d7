"""One alert model for every source, and the stable keys derived from it."""
from __future__ import annotations

import hashlib
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from .organisation import Organisation


class AlertStatus(str, Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertAction(str, Enum):
    """What the source asks for: PagerDuty's event_action, or the alert's status."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)
    href: str
    text: str | None = None


class Alert(BaseModel):
    """A normalised alert: what ingestion publishes on the intake topic."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    service: str
    summary: str
    action: AlertAction = AlertAction.TRIGGER
    source_severity: str | None = None
    dedup_key: str | None = None
    alert_name: str | None = None
    source: str = "api"
    integration: str = "default"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    links: list[Link] = []
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    received_at: datetime
    team: str | None = None

    @property
    def status(self) -> AlertStatus:
        return AlertStatus.RESOLVED if self.action is AlertAction.RESOLVE else AlertStatus.FIRING

    @property
    def name(self) -> str:
        return self.alert_name or self.labels.get("alertname") or self.summary

    @property
    def detected_at(self) -> datetime:
        """The source's start time, but never later than our receipt (skewed clocks)."""
        return min(self.starts_at, self.received_at) if self.starts_at else self.received_at


def _digest(*parts: str) -> str:
    joined = "\x1f".join(parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def fingerprint(alert: Alert, org: Organisation) -> str:
    """The source's own key when it gave one; otherwise a hash of what identifies the problem."""
    return fingerprint_of(alert.dedup_key, alert.service, alert.name, alert.labels, org)


def fingerprint_of(dedup_key: str | None, service: str, name: str, labels: dict[str, str], org: Organisation) -> str:
    """``fingerprint`` from the fields alone, for intake, which need not build an ``Alert``."""
    if dedup_key:
        return dedup_key
    labelled = [f"{label}={labels.get(label, '')}" for label in sorted(org.fingerprint_labels)]
    return _digest("fp", service, name, *labelled)


def correlation_key(alert: Alert, org: Organisation) -> str:
    """Alerts with one correlation key fold into one open incident.

    With grouping (``group_by``) the key is the service plus the grouped fields, so
    several fingerprints share an incident; without it each fingerprint is its own.
    """
    if not org.group_by:
        return "fp:" + _digest(alert.service, fingerprint(alert, org))
    values = []
    for field in org.group_by:
        if field == "alertname":
            values.append(alert.name)
        else:
            values.append(alert.labels.get(field, ""))
    return "grp:" + _digest(alert.service, *values)


class AlertRef(BaseModel):
    """What an incident remembers of one fingerprint."""

    fingerprint: str
    dedup_key: str | None = None
    summary: str
    name: str
    status: AlertStatus
    count: int = Field(ge=1)
    first_seen: datetime
    last_seen: datetime
    source: str
