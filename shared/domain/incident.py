"""The incident record: what triage holds in its table and every event carries."""
from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from .alerts import Link
from .organisation import Category, Severity, Target


def minutes_to_resolve(detected_at: datetime, resolved_at: datetime) -> float:
    """Time to resolve, detection to resolution, in minutes: the one definition of MTTR's span
    (Incident.mttr_minutes for one incident, shared.domain.metrics for the mean)."""
    return (resolved_at - detected_at).total_seconds() / 60.0


class IncidentStatus(str, Enum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATING = "mitigating"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATING)


class PlaybookStep(BaseModel):
    text: str
    done: bool = False
    done_by: str | None = None
    done_at: datetime | None = None


class AttachedPlaybook(BaseModel):
    name: str
    runbook_url: str
    steps: list[PlaybookStep] = []


class EscalationLevelPlan(BaseModel):
    timeout_seconds: float
    targets: list[Target]


class EscalationPlan(BaseModel):
    """The escalation policy frozen onto the incident when it opened."""

    policy: str
    levels: list[EscalationLevelPlan]
    repeat: int = 0
    rotation: str | None = None  # the owning team's rotation, for rotation targets


class Milestone(BaseModel):
    at: datetime
    change: str
    summary: str
    actor: str


Priority = Literal["P1", "P2", "P3", "P4"]
ActionStatus = Literal["open", "in_progress", "done", "cancelled"]


class ActionItem(BaseModel):
    item_id: str
    title: str
    owner: str
    due_date: date | None = None
    priority: Priority = "P3"
    status: ActionStatus = "open"
    created_at: datetime
    created_by: str
    # The incident's reopen count when the item was added: an item with the
    # current count is a corrective action added after the latest reopen.
    reopen_generation: int = 0


class Postmortem(BaseModel):
    required: bool
    status: Literal["draft", "completed"] = "draft"
    owner: str | None = None
    created_at: datetime
    due_at: datetime
    completed_at: datetime | None = None
    summary: str = ""
    impact: str = ""
    timeline: list[str] = []
    root_cause: str = ""
    contributing_factors: str = ""
    what_went_well: str = ""
    action_items: list[ActionItem] = []
    reminders_sent: int = 0


class MaintenanceMark(BaseModel):
    """An incident opened (or reopened by its alerts) inside a maintenance window: not paged then."""

    window_id: str
    reason: str
    until: datetime
    marked_at: datetime


class Incident(BaseModel):
    incident_id: str
    correlation_key: str
    title: str
    service: str
    team: str
    severity: Severity
    category: Category
    impact: str
    regulated: bool = False
    restricted: bool = False
    status: IncidentStatus
    commander: str | None = None
    declared: bool = False
    source: str = "api"
    classification_rule: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    links: list[Link] = []
    playbook: AttachedPlaybook | None = None
    escalation: EscalationPlan | None = None
    escalation_step: tuple[int, int] | None = None  # (round, level) last paged
    escalation_failed: bool = False
    # Every alert received (repeats included), the fingerprints among them, and how many
    # of those fire now. The references themselves live beside the incident (AlertRef).
    alert_count: int = 0
    distinct_alerts: int = 0
    firing_alerts: int = 0
    detected_at: datetime
    # The alert's starts_at when it was older than max_alert_age: detected_at is then the
    # receipt minus that age (detection.py), and MTTR counts from there.
    detected_at_clamped: datetime | None = None
    opened_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    last_update_at: datetime | None = None
    updated_at: datetime
    reopen_count: int = 0
    requires_additional_actions: bool = False
    mttr_target_minutes: float | None = None
    mttr_breached: bool = False
    previous_incident_id: str | None = None
    maintenance: MaintenanceMark | None = None
    milestones: list[Milestone] = []
    postmortem: Postmortem | None = None
    version: int = Field(default=0, ge=0)

    @property
    def mttr_minutes(self) -> float | None:
        """Minutes from detection to the latest resolution (None while unresolved)."""
        if self.resolved_at is None or self.status.is_open:
            return None
        return round(minutes_to_resolve(self.detected_at, self.resolved_at), 2)
