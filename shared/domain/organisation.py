"""The organisation as the configuration file describes it (validated, immutable).

Loading the YAML file is an adapter concern (shared/config_loader.py); these models
only say what a valid organisation is, so every rule below can be evaluated
without touching the disk.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .detection import DEFAULT_MAX_ALERT_AGE
from .durations import parse_duration


class Severity(str, Enum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"



class Category(str, Enum):
    OPERATIONAL = "operational"
    SECURITY = "security"
    DATA_INTEGRITY = "data-integrity"


SOURCE_SEVERITIES = ("critical", "error", "warning", "info")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _duration(value: object) -> timedelta:
    if isinstance(value, (str, int, float, timedelta)):
        return parse_duration(value)
    raise ValueError("expected a duration such as 30s, 5m, 72h or 30d")


def _durations_by_key(value: object) -> object:
    """A map of durations (a mode="before" validator sees the whole map): the error names its key."""
    if not isinstance(value, dict):
        return value
    durations = {}
    for key, item in value.items():
        try:
            durations[key] = _duration(item)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return durations


class Person(_Frozen):
    name: str | None = None
    email: str | None = None


class Webhook(_Frozen):
    """A Slack incoming-webhook style endpoint for one team."""

    url: str
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff: timedelta = timedelta(seconds=1)
    timeout: timedelta = timedelta(seconds=5)

    _d = field_validator("backoff", "timeout", mode="before")(_duration)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a webhook url must start with http:// or https://")
        return value


class Team(_Frozen):
    description: str | None = None
    rotation: str | None = None
    escalation_policy: str | None = None
    webhook: Webhook | None = None


class Service(_Frozen):
    team: str
    tier: int = Field(default=3, ge=1, le=4)
    regulated: bool = False
    escalation_policy: str | None = None
    description: str | None = None
    # Per severity, overrides the organisation's update_cadence for this service's incidents.
    update_cadence: dict[Severity, timedelta] = {}

    @field_validator("update_cadence", mode="before")
    @classmethod
    def _cadence(cls, value: object) -> object:
        durations = _durations_by_key(value)
        if isinstance(durations, dict):
            for key, duration in durations.items():
                if duration <= timedelta(0):
                    raise ValueError(f"{key}: an update cadence must be positive")
        return durations


class Override(_Frozen):
    person: str
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> "Override":
        # The offset check comes first: comparing a naive with an aware datetime
        # raises TypeError, which pydantic would not turn into a validation error.
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a UTC offset (for example 2026-12-24T09:00:00Z)")
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Rotation(_Frozen):
    participants: list[str] = Field(min_length=1)
    length: timedelta = timedelta(days=7)
    handoff: time = time(9, 0)
    time_zone: str = "UTC"
    start: date = date(2026, 1, 5)
    overrides: list[Override] = []

    _d = field_validator("length", mode="before")(_duration)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a name the zone database holds as a directory ("America") or one too long to be a file.
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("length")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a rotation length must be positive")
        return value


class Target(_Frozen):
    """Who one escalation level pages."""

    type: Literal["rotation", "person", "team_channel"]
    position: Literal["primary", "secondary"] = "primary"
    rotation: str | None = None  # default: the owning team's rotation
    person: str | None = None
    team: str | None = None  # team_channel: default the owning team

    @model_validator(mode="after")
    def _complete(self) -> "Target":
        if self.type == "person" and not self.person:
            raise ValueError("a person target names the person")
        return self


class EscalationLevel(_Frozen):
    timeout: timedelta
    targets: list[Target] = Field(min_length=1)

    _d = field_validator("timeout", mode="before")(_duration)

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an acknowledgement timeout must be positive")
        return value


class EscalationPolicy(_Frozen):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)


class Matcher(_Frozen):
    """Every condition given must hold; an empty condition matches anything."""

    services: list[str] = []
    alert_names: list[str] = []
    source_severities: list[str] = []
    service_tiers: list[int] = []
    categories: list[Category] = []
    labels: dict[str, str] = {}
    label_patterns: dict[str, str] = {}
    annotations: dict[str, str] = {}
    regulated_service: bool | None = None

    @field_validator("label_patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}, deeply nested groups
                raise ValueError(f"label_patterns.{name}: {exc}") from None
        return value

    @field_validator("source_severities")
    @classmethod
    def _known_severity(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in SOURCE_SEVERITIES:
                raise ValueError(f"source severity {item!r} is not one of {', '.join(SOURCE_SEVERITIES)}")
        return value


class SeverityRule(_Frozen):
    name: str
    match: Matcher = Matcher()
    severity: Severity | None = None
    category: Category | None = None
    impact: str | None = None
    regulated: bool | None = None


class Playbook(_Frozen):
    name: str
    match: Matcher = Matcher()
    runbook_url: str
    steps: list[str] = []


class PostmortemPolicy(_Frozen):
    required_severities: list[Severity] = [Severity.SEV1, Severity.SEV2]
    due_after: timedelta = timedelta(days=5)
    required_sections: list[Literal["summary", "impact", "root_cause", "contributing_factors", "what_went_well"]] = [
        "summary",
        "impact",
        "root_cause",
    ]
    reminder_interval: timedelta = timedelta(days=1)
    # A team may agree a different due time than the organisation's (team name -> duration).
    due_after_by_team: dict[str, timedelta] = {}

    _d = field_validator("due_after", "reminder_interval", mode="before")(_duration)

    _by_team = field_validator("due_after_by_team", mode="before")(_durations_by_key)

    def due_after_for(self, team: str) -> timedelta:
        return self.due_after_by_team.get(team, self.due_after)


class LabelNames(_Frozen):
    service: str = "service"
    team: str = "team"
    severity: str = "severity"


OpsgeniePriority = Literal["P1", "P2", "P3", "P4", "P5"]
SourceSeverity = Literal["critical", "error", "warning", "info"]
# Opsgenie's P1..P5 as the source severity an alert carries; the severity rules then
# classify it like any other source's alert (a rule on the label `priority` can too).
DEFAULT_PRIORITIES: dict[str, str] = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}


class Integration(_Frozen):
    """A monitoring system that sends alerts; its key is created with incidentctl."""

    default_service: str | None = None
    # No limit unless one is set: an alert storm is when alerts matter most, and a limit
    # lower than a storm needs loses the storm (README, "Intake limits"). A set limit is
    # an average rate; a request larger than it still gets in when the bucket is full.
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    label_names: LabelNames = LabelNames()
    priorities: dict[OpsgeniePriority, SourceSeverity] = DEFAULT_PRIORITIES

    @field_validator("priorities", mode="before")
    @classmethod
    def _complete(cls, value: object) -> object:
        # A partial map keeps the defaults for the priorities it does not name.
        return {**DEFAULT_PRIORITIES, **value} if isinstance(value, dict) else value


class Heartbeat(_Frozen):
    """A dead man's switch: monitoring pings it every ``interval``; silence past ``grace`` opens an incident."""

    interval: timedelta
    grace: timedelta = timedelta(0)
    service: str
    team: str | None = None  # the service's owning team (named here so a reader sees who is paged)
    severity: Severity = Severity.SEV2
    description: str | None = None

    _d = field_validator("interval", "grace", mode="before")(_duration)

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a heartbeat interval must be positive")
        return value

    @property
    def timeout(self) -> timedelta:
        return self.interval + self.grace


HEARTBEAT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# A team has its own Kafka topic, notifications.<team>: a name the broker refuses would
# stop the services at start with a broker error instead of a message naming the team.
TEAM_NAME = re.compile(r"^[A-Za-z0-9._-]{1,235}$")  # Kafka's topic characters; 249 with "notifications."


class NotificationPolicy(_Frozen):
    # Repeated notifications of one kind for one incident are held back this long.
    repeat_backoff: timedelta = timedelta(minutes=1)
    repeat_backoff_max: timedelta = timedelta(minutes=30)

    _d = field_validator("repeat_backoff", "repeat_backoff_max", mode="before")(_duration)


class Organisation(_Frozen):
    organisation: str = "Example"
    incident_url: str = "http://127.0.0.1:8080/v1/incidents/{incident_id}"
    reopen_window: timedelta = timedelta(hours=72)
    metrics_window: timedelta = timedelta(days=30)
    # An alert's starts_at older than this before its receipt counts as receipt minus this (detection.py).
    max_alert_age: timedelta = DEFAULT_MAX_ALERT_AGE
    group_by: list[str] = ["alertname"]
    fingerprint_labels: list[str] = []
    evidence_max_bytes: int = Field(default=65536, ge=1024)
    people: dict[str, Person] = {}
    teams: dict[str, Team]
    services: dict[str, Service]
    rotations: dict[str, Rotation] = {}
    escalation_policies: dict[str, EscalationPolicy] = {}
    default_escalation_policy: str | None = None
    fallback_team: str
    security_team: str
    compliance_team: str | None = None
    severity_rules: list[SeverityRule] = []
    default_severity: Severity = Severity.SEV3
    playbooks: list[Playbook] = []
    mttr_targets: dict[Severity, timedelta] = {}
    update_cadence: dict[Severity, timedelta] = {}
    postmortem: PostmortemPolicy = PostmortemPolicy()
    integrations: dict[str, Integration] = {"default": Integration()}
    notifications: NotificationPolicy = NotificationPolicy()
    heartbeats: dict[str, Heartbeat] = {}

    _d = field_validator("reopen_window", "metrics_window", "max_alert_age", mode="before")(_duration)

    @field_validator("teams")
    @classmethod
    def _topic_names(cls, value: dict[str, Team]) -> dict[str, Team]:
        for name in value:
            if not TEAM_NAME.match(name):
                raise ValueError(f"{name!r}: a team name becomes the Kafka topic notifications.<team>, so it is "
                                 "letters, digits, '.', '_' or '-' (at most 235)")
        return value

    @field_validator("max_alert_age")
    @classmethod
    def _positive_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("max_alert_age must be positive")
        return value

    _by_severity = field_validator("mttr_targets", "update_cadence", mode="before")(_durations_by_key)

    @model_validator(mode="after")
    def _references(self) -> "Organisation":
        def need(kind: str, name: str | None, known: dict, where: str) -> None:
            if name is not None and name not in known:
                raise ValueError(f"{where}: unknown {kind} {name!r}")

        for team_name, team in self.teams.items():
            need("rotation", team.rotation, self.rotations, f"teams.{team_name}.rotation")
            need("escalation policy", team.escalation_policy, self.escalation_policies,
                 f"teams.{team_name}.escalation_policy")
        for service_name, service in self.services.items():
            need("team", service.team, self.teams, f"services.{service_name}.team")
            need("escalation policy", service.escalation_policy, self.escalation_policies,
                 f"services.{service_name}.escalation_policy")
        for rotation_name, rotation in self.rotations.items():
            for index, person in enumerate(rotation.participants):
                if self.people and person not in self.people:
                    raise ValueError(f"rotations.{rotation_name}.participants.{index}: unknown person {person!r}")
        for policy_name, policy in self.escalation_policies.items():
            for level_index, level in enumerate(policy.levels):
                for target_index, target in enumerate(level.targets):
                    where = f"escalation_policies.{policy_name}.levels.{level_index}.targets.{target_index}"
                    need("rotation", target.rotation, self.rotations, f"{where}.rotation")
                    need("team", target.team, self.teams, f"{where}.team")
                    if self.people:
                        need("person", target.person, self.people, f"{where}.person")
        need("escalation policy", self.default_escalation_policy, self.escalation_policies,
             "default_escalation_policy")
        need("team", self.fallback_team, self.teams, "fallback_team")
        need("team", self.security_team, self.teams, "security_team")
        need("team", self.compliance_team, self.teams, "compliance_team")
        for team_name in self.postmortem.due_after_by_team:
            need("team", team_name, self.teams, f"postmortem.due_after_by_team.{team_name}")
        if "{incident_id}" not in self.incident_url:
            raise ValueError("incident_url: must contain {incident_id}")
        for name, beat in self.heartbeats.items():
            if not HEARTBEAT_NAME.match(name):
                raise ValueError(f"heartbeats.{name}: a name is letters, digits, '.', '_' or '-' (at most 100)")
            need("service", beat.service, self.services, f"heartbeats.{name}.service")
            need("team", beat.team, self.teams, f"heartbeats.{name}.team")
            owner = self.services[beat.service].team
            if beat.team is not None and beat.team != owner:
                raise ValueError(f"heartbeats.{name}.team: service {beat.service!r} is owned by team {owner!r}")
        return self

    @property
    def effective_severity_rules(self) -> list[SeverityRule]:
        """The severity rules, after one rule per heartbeat: its incident has the severity it configures."""
        beats = [
            SeverityRule(name=f"heartbeat:{name}", severity=beat.severity,
                         match=Matcher(services=[beat.service], labels={"heartbeat": name}))
            for name, beat in self.heartbeats.items()
        ]
        return [*beats, *self.severity_rules]
