"""Commands: what someone (a person, a monitoring system, a timer) asks of an incident."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .alerts import Alert, AlertAction, AlertRef, Link
from .incident import ActionStatus, Priority
from .organisation import Category, Severity

_Text = Annotated[str, Field(min_length=1, max_length=10_000)]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenIncident(_Command):
    """Open a new incident, from the first alert of a correlation key or by hand."""

    kind: Literal["open"] = "open"
    incident_id: str
    correlation_key: str
    alert: Alert | None = None
    fingerprint: str | None = None
    # A declared incident (no alert): what the person said.
    title: str | None = None
    service: str | None = None
    severity: Severity | None = None
    category: Category | None = None
    impact: str | None = None
    commander: str | None = None
    labels: dict[str, str] = {}
    links: list[Link] = []
    previous_incident_id: str | None = None


class AlertOrigin(BaseModel):
    """Where one folded alert was read, and what it asked for: a redelivered command is
    applied only for the alerts not applied yet, however the batches were cut."""

    model_config = ConfigDict(frozen=True)
    stream: str
    offset: int
    action: AlertAction
    alert_id: str
    fingerprint: str
    received_at: datetime


class AttachAlerts(_Command):
    """Alerts of one incident, folded from one batch: one command (and one audit event)
    for all of them, never one each. ``refs`` hold the fingerprints touched, after the
    batch; ``firing_alerts`` and ``distinct_alerts`` are the incident's totals after it."""

    kind: Literal["attach_alerts"] = "attach_alerts"
    origins: list[AlertOrigin]
    refs: list[AlertRef]
    firing_alerts: int = Field(ge=0)
    distinct_alerts: int = Field(ge=0)
    # The earliest start a trigger of the batch reports (detection never later than it).
    detected_at: datetime | None = None
    # The starts_at that detected_at was clamped from (older than max_alert_age), if it was.
    detected_at_clamped: datetime | None = None
    first_trigger_summary: str | None = None


class Acknowledge(_Command):
    kind: Literal["acknowledge"] = "acknowledge"
    note: str | None = None


class PostUpdate(_Command):
    kind: Literal["post_update"] = "post_update"
    message: _Text


class AddMitigation(_Command):
    kind: Literal["add_mitigation"] = "add_mitigation"
    description: _Text
    playbook_step: int | None = Field(default=None, ge=0)


class AddEvidence(_Command):
    kind: Literal["add_evidence"] = "add_evidence"
    title: Annotated[str, Field(min_length=1, max_length=500)]
    url: str | None = None
    content: str | None = None
    media_type: str = "text/plain"


class ChangeSeverity(_Command):
    kind: Literal["change_severity"] = "change_severity"
    severity: Severity
    reason: _Text


class ChangeCommander(_Command):
    kind: Literal["change_commander"] = "change_commander"
    commander: Annotated[str, Field(min_length=1, max_length=200)]
    reason: str | None = None


class Resolve(_Command):
    kind: Literal["resolve"] = "resolve"
    note: str | None = None


class Close(_Command):
    kind: Literal["close"] = "close"
    verification: _Text


class Reopen(_Command):
    kind: Literal["reopen"] = "reopen"
    reason: _Text


class RecordEscalation(_Command):
    """The escalation service paged a level (sent as data so triage records it)."""

    kind: Literal["record_escalation"] = "record_escalation"
    round: int = Field(ge=0)
    level: int = Field(ge=0)
    targets: list[str]
    timeout_seconds: float


class MarkEscalationFailed(_Command):
    kind: Literal["escalation_failed"] = "escalation_failed"
    round: int = Field(ge=0)
    fallback_team: str


class HoldForMaintenance(_Command):
    """The escalation service held an incident's paging: it opened inside a maintenance window."""

    kind: Literal["hold_for_maintenance"] = "hold_for_maintenance"
    window_id: str
    reason: str
    until: datetime


class SendReminder(_Command):
    kind: Literal["reminder"] = "reminder"
    reminder: Literal["update_due", "postmortem_overdue", "mttr_target_breached"]
    due_at: str  # identifies the deadline that fired, so a repeat is recognised


class EditPostmortem(_Command):
    kind: Literal["edit_postmortem"] = "edit_postmortem"
    summary: str | None = None
    impact: str | None = None
    root_cause: str | None = None
    contributing_factors: str | None = None
    what_went_well: str | None = None
    timeline: list[str] | None = None
    owner: str | None = None


class AddActionItem(_Command):
    kind: Literal["add_action_item"] = "add_action_item"
    title: Annotated[str, Field(min_length=1, max_length=500)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    due_date: date | None = None
    priority: Priority = "P3"


class UpdateActionItem(_Command):
    kind: Literal["update_action_item"] = "update_action_item"
    item_id: str
    title: str | None = None
    owner: str | None = None
    due_date: date | None = None
    priority: Priority | None = None
    status: ActionStatus | None = None


class CompletePostmortem(_Command):
    kind: Literal["complete_postmortem"] = "complete_postmortem"


Command = Annotated[
    Union[
        OpenIncident,
        AttachAlerts,
        Acknowledge,
        PostUpdate,
        AddMitigation,
        AddEvidence,
        ChangeSeverity,
        ChangeCommander,
        Resolve,
        Close,
        Reopen,
        RecordEscalation,
        MarkEscalationFailed,
        SendReminder,
        HoldForMaintenance,
        EditPostmortem,
        AddActionItem,
        UpdateActionItem,
        CompletePostmortem,
    ],
    Field(discriminator="kind"),
]
