"""One alert model for every source, and the stable keys derived from it."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from .classification import restricted_alert
from .detection import Detection, detection_of
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

    def detection(self, max_age: timedelta) -> Detection:
        """When this alert says its problem was detected, within limits (detection.py)."""
        return detection_of(self.starts_at, self.received_at, max_age)


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
    A restricted (security) alert never shares a key with an operational one.
    """
    restricted = restricted_alert(alert.service, alert.name, alert.source_severity, alert.labels,
                                  alert.annotations, org)
    return correlation_key_of(alert.service, alert.name, alert.labels, fingerprint(alert, org), org, restricted)


def correlation_key_of(service: str, name: str, labels: dict[str, str], fingerprint_: str, org: Organisation,
                       restricted: bool = False) -> str:
    """``correlation_key`` from the fields alone, for intake, which need not build an ``Alert``.

    A restricted alert's key has one more part: folded into an operational incident, a
    security alert's summary and labels would be shown to every role, and the security
    team never paged (an operational alert would likewise be hidden in a security incident).
    Operational keys are unchanged by it.
    """
    apart = ("restricted",) if restricted else ()
    if not org.group_by:
        return "fp:" + _digest(service, fingerprint_, *apart)
    values = [name if field == "alertname" else labels.get(field, "") for field in org.group_by]
    return "grp:" + _digest(service, *values, *apart)


class AlertRef(BaseModel):
    """What an incident remembers of one fingerprint: kept beside the incident (triage's
    alert table, PostgreSQL's incident_alerts), never inside it, so that one more alert
    costs the same however many the incident already has."""

    fingerprint: str
    dedup_key: str | None = None
    summary: str
    name: str
    status: AlertStatus
    count: int = Field(ge=1)
    first_seen: datetime
    last_seen: datetime
    source: str
    # The alert's own labels (which host, which instance): what a responder looks at.
    labels: dict[str, str] = {}


def fold_ref(previous: AlertRef | None, alert: Alert, fingerprint_: str) -> AlertRef:
    """The reference after one more alert of its fingerprint."""
    return AlertRef(
        fingerprint=fingerprint_,
        dedup_key=alert.dedup_key or fingerprint_,
        summary=alert.summary,
        name=alert.name,
        status=alert.status,
        count=(previous.count + 1) if previous else 1,
        first_seen=previous.first_seen if previous else alert.received_at,
        last_seen=alert.received_at,
        source=alert.source,
        labels=alert.labels,
    )


def needs_lookup(alert: Alert) -> bool:
    """Whether follow-ups of this alert may come without what identifies its correlation.

    A source's own dedup key (PagerDuty, Opsgenie, a native dedup_key) names the alert
    on its own: its acknowledge or resolve may carry no service or a different summary,
    so it must find the correlation key its trigger had (triage's fingerprint table).
    An alert fingerprinted by its labels (Alertmanager, native without dedup_key) always
    carries them, so its correlation key is computed again, right at the edge.
    """
    return needs_lookup_of(alert.dedup_key, alert.source)


def needs_lookup_of(dedup_key: str | None, source: str | None) -> bool:
    """``needs_lookup`` from the fields alone."""
    return dedup_key is not None and source not in LABELLED_SOURCES


# Sources whose dedup key is itself a hash of the labels every notification carries.
LABELLED_SOURCES = frozenset({"alertmanager", "grafana"})
