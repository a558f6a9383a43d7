"""Events: what happened to an incident, past tense; ``evolve`` applies one to the state."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .alerts import AlertRef
from .commands import AlertOrigin
from .incident import ActionItem, Incident, IncidentStatus, MaintenanceMark, Milestone, Postmortem
from .organisation import Severity


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str
    at: datetime

    @property
    def audit_type(self) -> str:
        return "incident.updated"

    def describe(self) -> str:
        return self.change.replace("_", " ")  # type: ignore[attr-defined]


class Opened(_Event):
    change: Literal["opened"] = "opened"
    incident: Incident
    # The opening alert's reference (kept beside the incident, not in it).
    refs: list[AlertRef] = []
    # The opening alert's id, so its record (and an Opsgenie request's status) can be found by it.
    alert_id: str | None = None
    # The opening alert's starts_at when detection was clamped (in the audit data, so in the chain).
    detected_at_clamped: datetime | None = None

    @property
    def audit_type(self) -> str:
        return "incident.opened"

    def describe(self) -> str:
        return f"opened {self.incident.severity.value} on {self.incident.service}: {self.incident.title}"


class AlertsAttached(_Event):
    """Alerts of one batch recorded on the incident: counts, and the references touched."""

    change: Literal["alerts_attached"] = "alerts_attached"
    count: int
    firing: int = 0
    resolved: int = 0
    acknowledged: int = 0
    refs: list[AlertRef] = []
    # Each alert of the batch: its id, fingerprint, position and what it asked for.
    alerts: list[AlertOrigin] = []
    firing_alerts: int
    distinct_alerts: int
    # Set when an alert says the problem started before the incident's detection
    # (e.g. Alertmanager's startsAt arriving after a PagerDuty event without one).
    detected_at: datetime | None = None
    # The starts_at that detected_at was clamped from (older than max_alert_age), if it was.
    detected_at_clamped: datetime | None = None

    def describe(self) -> str:
        if self.count == 1 and self.refs:
            verb = "resolved by its source" if self.resolved else "received"
            return f"alert {self.refs[0].name!r} {verb} (seen {self.refs[0].count} times)"
        return (f"{self.count} alerts received ({self.firing} firing, {self.resolved} resolved); "
                f"{self.firing_alerts} of {self.distinct_alerts} firing")


class Acknowledged(_Event):
    change: Literal["acknowledged"] = "acknowledged"
    note: str | None = None

    def describe(self) -> str:
        return f"acknowledged by {self.actor}"


class UpdatePosted(_Event):
    change: Literal["update_posted"] = "update_posted"
    message: str

    def describe(self) -> str:
        return f"update from {self.actor}: {self.message}"


class MitigationAdded(_Event):
    change: Literal["mitigation_added"] = "mitigation_added"
    description: str
    playbook_step: int | None = None

    def describe(self) -> str:
        return f"mitigation by {self.actor}: {self.description}"


class EvidenceAdded(_Event):
    change: Literal["evidence_added"] = "evidence_added"
    evidence_id: str
    title: str
    url: str | None = None
    content: str | None = None
    media_type: str = "text/plain"

    def describe(self) -> str:
        return f"evidence added by {self.actor}: {self.title}"


class SeverityChanged(_Event):
    change: Literal["severity_changed"] = "severity_changed"
    previous: Severity
    severity: Severity
    reason: str
    mttr_target_minutes: float | None = None

    def describe(self) -> str:
        return f"severity {self.previous.value} -> {self.severity.value} by {self.actor}: {self.reason}"


class CommanderChanged(_Event):
    change: Literal["commander_changed"] = "commander_changed"
    previous: str | None
    commander: str
    reason: str | None = None

    def describe(self) -> str:
        return f"commander is now {self.commander} (was {self.previous or 'nobody'})"


class Resolved(_Event):
    change: Literal["resolved"] = "resolved"
    note: str | None = None
    by_monitoring: bool = False

    def describe(self) -> str:
        return "resolved by monitoring (every alert resolved)" if self.by_monitoring else f"resolved by {self.actor}"


class Closed(_Event):
    change: Literal["closed"] = "closed"
    verification: str

    @property
    def audit_type(self) -> str:
        return "incident.closed"

    def describe(self) -> str:
        return f"closed by {self.actor}: {self.verification}"


class Reopened(_Event):
    change: Literal["reopened"] = "reopened"
    reason: str
    recurrence: bool = False

    def describe(self) -> str:
        return f"reopened: {self.reason}"


class Escalated(_Event):
    change: Literal["escalated"] = "escalated"
    round: int
    level: int
    targets: list[str]
    timeout_seconds: float

    def describe(self) -> str:
        return f"escalation level {self.level + 1} (round {self.round + 1}) paged {', '.join(self.targets)}"


class EscalationFailed(_Event):
    change: Literal["escalation_failed"] = "escalation_failed"
    round: int
    fallback_team: str

    def describe(self) -> str:
        return f"escalation failed: nobody acknowledged; {self.fallback_team} notified"


class ReminderSent(_Event):
    change: Literal["update_due", "postmortem_overdue"]
    due_at: str

    def describe(self) -> str:
        return "status update overdue" if self.change == "update_due" else "postmortem overdue"


class MttrTargetBreached(_Event):
    change: Literal["mttr_target_breached"] = "mttr_target_breached"
    target_minutes: float

    def describe(self) -> str:
        return f"MTTR target of {self.target_minutes:g} minutes breached"


class MaintenanceHeld(_Event):
    change: Literal["maintenance_held"] = "maintenance_held"
    window_id: str
    reason: str
    until: datetime

    def describe(self) -> str:
        return f"in maintenance window {self.window_id} ({self.reason}): not paged until {self.until:%Y-%m-%d %H:%M:%SZ}"


class PostmortemCreated(_Event):
    change: Literal["postmortem_created"] = "postmortem_created"
    postmortem: Postmortem

    def describe(self) -> str:
        return f"postmortem created, owned by {self.postmortem.owner or 'nobody'}, due {self.postmortem.due_at:%Y-%m-%d}"


class PostmortemEdited(_Event):
    change: Literal["postmortem_edited"] = "postmortem_edited"
    fields: dict[str, str | list[str]]

    def describe(self) -> str:
        return f"postmortem edited ({', '.join(sorted(self.fields))})"


class ActionItemAdded(_Event):
    change: Literal["action_item_added"] = "action_item_added"
    item: ActionItem

    def describe(self) -> str:
        return f"action item {self.item.item_id} for {self.item.owner}: {self.item.title}"


class ActionItemUpdated(_Event):
    change: Literal["action_item_updated"] = "action_item_updated"
    item: ActionItem

    def describe(self) -> str:
        return f"action item {self.item.item_id} is {self.item.status}"


class PostmortemCompleted(_Event):
    change: Literal["postmortem_completed"] = "postmortem_completed"

    def describe(self) -> str:
        return f"postmortem completed by {self.actor}"


Event = Annotated[
    Union[
        Opened,
        AlertsAttached,
        Acknowledged,
        UpdatePosted,
        MitigationAdded,
        EvidenceAdded,
        SeverityChanged,
        CommanderChanged,
        Resolved,
        Closed,
        Reopened,
        Escalated,
        EscalationFailed,
        ReminderSent,
        MttrTargetBreached,
        MaintenanceHeld,
        PostmortemCreated,
        PostmortemEdited,
        ActionItemAdded,
        ActionItemUpdated,
        PostmortemCompleted,
    ],
    Field(discriminator="change"),
]

# Changes worth a line in the postmortem's prefilled timeline.
MILESTONE_CHANGES = frozenset(
    {
        "opened", "acknowledged", "mitigation_added", "severity_changed", "commander_changed",
        "resolved", "closed", "reopened", "escalated", "escalation_failed", "mttr_target_breached",
        "update_posted", "maintenance_held",
    }
)


def evolve(state: Incident | None, event: _Event) -> Incident:
    """Apply one event; the result's version is one more than the state's."""
    if isinstance(event, Opened):
        incident = event.incident
    else:
        if state is None:
            raise ValueError(f"{event.change} needs an existing incident")
        incident = _apply(state, event)
    updates: dict = {"version": (state.version if state else 0) + 1, "updated_at": event.at}
    if event.change in MILESTONE_CHANGES:
        milestone = Milestone(at=event.at, change=event.change, summary=event.describe(), actor=event.actor)
        updates["milestones"] = [*incident.milestones, milestone]
    return incident.model_copy(update=updates)


def _with_postmortem(state: Incident, **changes) -> Incident:
    assert state.postmortem is not None
    return state.model_copy(update={"postmortem": state.postmortem.model_copy(update=changes)})


def _apply(state: Incident, event: _Event) -> Incident:  # noqa: C901 - one branch per event
    if isinstance(event, AlertsAttached):
        update = {
            "alert_count": state.alert_count + event.count,
            "firing_alerts": event.firing_alerts,
            "distinct_alerts": event.distinct_alerts,
        }
        if event.detected_at is not None:
            update["detected_at"] = event.detected_at
            update["detected_at_clamped"] = event.detected_at_clamped
        return state.model_copy(update=update)
    if isinstance(event, Acknowledged):
        return state.model_copy(update={"status": IncidentStatus.ACKNOWLEDGED, "acknowledged_at": event.at})
    if isinstance(event, UpdatePosted):
        return state.model_copy(update={"last_update_at": event.at})
    if isinstance(event, MitigationAdded):
        update: dict = {"status": IncidentStatus.MITIGATING}
        if event.playbook_step is not None and state.playbook is not None:
            steps = list(state.playbook.steps)
            steps[event.playbook_step] = steps[event.playbook_step].model_copy(
                update={"done": True, "done_by": event.actor, "done_at": event.at}
            )
            update["playbook"] = state.playbook.model_copy(update={"steps": steps})
        return state.model_copy(update=update)
    if isinstance(event, EvidenceAdded):
        return state
    if isinstance(event, SeverityChanged):
        return state.model_copy(
            update={"severity": event.severity, "mttr_target_minutes": event.mttr_target_minutes}
        )
    if isinstance(event, CommanderChanged):
        return state.model_copy(update={"commander": event.commander})
    if isinstance(event, Resolved):
        return state.model_copy(update={"status": IncidentStatus.RESOLVED, "resolved_at": event.at})
    if isinstance(event, Closed):
        return state.model_copy(
            update={"status": IncidentStatus.CLOSED, "closed_at": event.at, "requires_additional_actions": False}
        )
    if isinstance(event, Reopened):
        return state.model_copy(
            update={
                "status": IncidentStatus.TRIGGERED,
                "closed_at": None,
                "acknowledged_at": None,
                "reopen_count": state.reopen_count + 1,
                "requires_additional_actions": True,
                "escalation_step": None,
                "escalation_failed": False,
                "mttr_breached": False,
            }
        )
    if isinstance(event, Escalated):
        return state.model_copy(update={"escalation_step": (event.round, event.level)})
    if isinstance(event, EscalationFailed):
        return state.model_copy(update={"escalation_failed": True})
    if isinstance(event, ReminderSent):
        if event.change == "postmortem_overdue" and state.postmortem is not None:
            return _with_postmortem(state, reminders_sent=state.postmortem.reminders_sent + 1)
        return state
    if isinstance(event, MttrTargetBreached):
        return state.model_copy(update={"mttr_breached": True})
    if isinstance(event, MaintenanceHeld):
        mark = MaintenanceMark(window_id=event.window_id, reason=event.reason, until=event.until, marked_at=event.at)
        return state.model_copy(update={"maintenance": mark})
    if isinstance(event, PostmortemCreated):
        return state.model_copy(update={"postmortem": event.postmortem})
    if isinstance(event, PostmortemEdited):
        return _with_postmortem(state, **event.fields)
    if isinstance(event, ActionItemAdded):
        assert state.postmortem is not None
        return _with_postmortem(state, action_items=[*state.postmortem.action_items, event.item])
    if isinstance(event, ActionItemUpdated):
        assert state.postmortem is not None
        items = [event.item if item.item_id == event.item.item_id else item for item in state.postmortem.action_items]
        return _with_postmortem(state, action_items=items)
    if isinstance(event, PostmortemCompleted):
        return _with_postmortem(state, status="completed", completed_at=event.at)
    raise TypeError(f"no rule to apply {type(event).__name__}")
