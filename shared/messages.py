"""Every message that crosses a topic. The catalogue (catalogue.py) says which goes where."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .domain.alerts import Alert, AlertAction, Link
from .domain.commands import Command
from .domain.incident import IncidentStatus
# Messages too (the values on oncall.overrides and maintenance.windows), defined beside their rules.
from .domain.maintenance import MaintenanceWindow  # noqa: F401
from .domain.oncall import RotationOverride  # noqa: F401

Label = Annotated[str, Field(max_length=4096)]
# At least one character that str.strip() keeps: the whitespace class is spelled out, because
# `\S` means one set in Python and another in a JSON Schema client (U+0085, U+001C..U+001F).
NOT_BLANK = r"[^\t-\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class NativeAlert(BaseModel):
    """The public alert format: the body of POST /v1/alerts and the value on ``alerts.intake``.

    Ingestion fills the envelope fields (``alert_id``, ``received_at``, ``integration``,
    ``action``); a producer writing straight onto the topic may leave them out.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # Whitespace is stripped first: the pattern tells a client (and the OpenAPI document)
    # that a value of spaces alone is empty.
    service: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]
    summary: Annotated[str, Field(min_length=1, max_length=1024, pattern=NOT_BLANK)]
    status: Literal["firing", "resolved"] = "firing"
    severity: Literal["critical", "error", "warning", "info"] | None = None
    dedup_key: Annotated[str, Field(min_length=1, max_length=255, pattern=NOT_BLANK)] | None = None
    source: Annotated[str, Field(max_length=255)] | None = None
    alert_name: Annotated[str, Field(max_length=255)] | None = None
    team: Annotated[str, Field(max_length=200)] | None = None
    # Factories, not {} or [] defaults: pydantic deep-copies a mutable default for every
    # alert it parses, which doubled the cost of validating a storm's alerts.
    labels: dict[str, Label] = Field(default_factory=dict)
    annotations: dict[str, Label] = Field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    links: list[Link] = Field(default_factory=list)
    # Envelope, set by ingestion.
    alert_id: str | None = None
    received_at: datetime | None = None
    integration: str | None = None
    action: AlertAction | None = None

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps need a UTC offset (RFC 3339), for example 2026-11-27T10:00:00Z")
        return value

    def to_alert(self, alert_id: str, received_at: datetime) -> Alert:
        action = self.action or (AlertAction.RESOLVE if self.status == "resolved" else AlertAction.TRIGGER)
        return Alert(
            alert_id=self.alert_id or alert_id,
            service=self.service,
            summary=self.summary,
            action=action,
            source_severity=self.severity,
            dedup_key=self.dedup_key,
            alert_name=self.alert_name,
            source=self.source or "kafka",
            integration=self.integration or "kafka",
            labels=self.labels,
            annotations=self.annotations,
            links=self.links,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            received_at=self.received_at or received_at,
            team=self.team,
        )


class Origin(BaseModel):
    """The Kafka position a message was derived from: redelivery repeats it, so it dedups."""

    topic: str
    partition: int
    offset: int
    # Several messages derived from one source message are told apart by index.
    index: int = 0
    # Messages of one lane (an alert fingerprint) keep their source order through
    # every hop; different lanes from one partition may overtake each other.
    lane: str = ""

    @property
    def stream(self) -> str:
        lane = f"/{self.lane}" if self.lane else ""
        suffix = f"/{self.index}" if self.index else ""
        return f"{self.topic}:{self.partition}{lane}{suffix}"


class FingerprintedAlert(BaseModel):
    """An alert keyed by its fingerprint, on its way to the correlator."""

    alert: Alert
    fingerprint: str
    origin: Origin


class CorrelateAlert(BaseModel):
    kind: Literal["alert"] = "alert"
    alert: Alert
    fingerprint: str
    correlation_key: str
    origin: Origin


class IncidentLink(BaseModel):
    """Triage tells its correlation table where an incident stands."""

    kind: Literal["incident"] = "incident"
    correlation_key: str
    incident_id: str
    status: IncidentStatus
    resolved_at: datetime | None = None
    version: int


CorrelationMessage = Annotated[Union[CorrelateAlert, IncidentLink], Field(discriminator="kind")]


class CommandEnvelope(BaseModel):
    command_id: str
    incident_id: str
    actor: str
    issued_at: datetime
    origin: Origin | None = None
    # The API could not check that the actor may see this incident (PostgreSQL was away):
    # triage answers not_found for a restricted one, as the API would have.
    unrestricted_only: bool = False
    command: Command


class AuditEvent(BaseModel):
    """One state change of one incident, as published on ``incident.audit``."""

    event_id: str
    type: Literal["incident.opened", "incident.updated", "incident.closed"]
    change: str
    incident_id: str
    occurred_at: datetime
    actor: str
    version: int
    summary: str
    causation_id: str | None = None
    data: dict[str, Any]
    incident: dict[str, Any]
    # The audit chain (shared/domain/audit_chain.py): the previous event's hash, and this
    # event's own over its canonical form. None only on events made before the chain.
    prev_hash: str | None = None
    hash: str | None = None


class _HeadIncident(BaseModel):
    model_config = ConfigDict(extra="ignore")
    service: str
    restricted: bool = False  # metrics hides a restricted incident's service (visibility.py)


class _HeadData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    detected_at: datetime | None = None
    count: int = 1
    firing: int = 0


class AuditHead(BaseModel):
    """An audit event read without its incident snapshot: in an alert storm most events are
    ``alerts_attached``, which most consumers only need to recognise and pass over."""

    model_config = ConfigDict(extra="ignore")
    event_id: str
    incident_id: str
    change: str
    version: int
    incident: _HeadIncident
    data: _HeadData = _HeadData()

    @property
    def only_an_alert(self) -> bool:
        """Alerts attached or resolved that changed nothing but the alert counts."""
        return self.change == "alerts_attached" and self.data.detected_at is None


class CommandResult(BaseModel):
    command_id: str
    incident_id: str
    outcome: Literal["applied", "rejected", "not_found"]
    reason: str | None = None
    version: int | None = None
    event_ids: list[str] = []


class Notification(BaseModel):
    """One message on ``notifications.<team>``."""

    notification_id: str
    kind: str
    team: str
    incident_id: str
    title: str
    text: str
    severity: str
    service: str
    status: str
    commander: str | None
    category: str
    targets: list[str] = []
    runbook_url: str | None = None
    incident_url: str
    event_id: str
    occurred_at: datetime


class CommunicationRecord(BaseModel):
    """One entry of an incident's communication log (a notification sent or failed)."""

    record_id: str
    incident_id: str
    channel: str
    team: str
    kind: str
    status: Literal["sent", "failed", "dead_lettered", "suppressed"]
    text: str
    attempt: int = 1
    error: str | None = None
    notification_id: str | None = None
    occurred_at: datetime


class WebhookDelivery(BaseModel):
    """A webhook post waiting for its next attempt."""

    notification: Notification
    url: str
    attempt: int
    not_before: datetime
    last_error: str | None = None


class DeadLetter(BaseModel):
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    reason: str
    payload: str
    service: str
    failed_at: datetime


class DeadlineCheck(BaseModel):
    """The escalation timer asks the agent that owns the incident to look at it again."""

    incident_id: str
    due: datetime


class Probe(BaseModel):
    """A readiness probe: sent by a service through its own producer, seen by its own consumer."""

    probe_id: str
    service: str
    sent_at: datetime


class HeartbeatPing(BaseModel):
    """A heartbeat was pinged (by its URL, Opsgenie's, or an Alertmanager Watchdog receiver)."""

    name: str
    at: datetime
    source: str  # the path it came in by
    integration: str


class HeartbeatCheck(BaseModel):
    """The heartbeat timer asks the agent that owns the heartbeat to look at its deadline again."""

    name: str
    due: datetime
