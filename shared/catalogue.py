"""The one catalogue of topics: name, key, value, partitions, who writes and who reads.

Services declare topics only through this module; the README's topic table is
rendered from it (``python -m shared.catalogue``) and a test keeps the two equal.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import messages as m
from .domain.organisation import Organisation

KEYED = "keyed"  # partitions = the app-wide topic_partitions (co-partitioned with the tables)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: type[BaseModel]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    partitions: str | int = KEYED
    public: bool = False
    compacted: bool = False
    configs: tuple[tuple[str, str], ...] = ()  # topic configs set at creation (retention, ...)

    def partition_count(self, default: int) -> int:
        return default if self.partitions == KEYED else int(self.partitions)


ALERTS_INTAKE = TopicSpec(
    "alerts.intake", "correlation key; fingerprint for dedup-key follow-ups (any key accepted)", m.NativeAlert,
    ("ingestion", "escalation (heartbeats)", "monitoring systems"), ("triage", "metrics"),
    "Every accepted alert, in the native alert format.", public=True,
)
TRIAGE_ALERTS = TopicSpec(
    "triage.alerts", "fingerprint", m.FingerprintedAlert,
    ("triage",), ("triage",),
    "Normalised alerts keyed by fingerprint, so a resolve that names only its key finds its incident.",
)
TRIAGE_CORRELATION = TopicSpec(
    "triage.correlation", "correlation key", m.CorrelateAlert,
    ("triage",), ("triage",),
    "Alerts keyed by correlation key (CorrelateAlert), and incident status fed back (IncidentLink).",
)
INCIDENT_COMMANDS = TopicSpec(
    "incident.commands", "incident id", m.CommandEnvelope,
    ("ingestion", "triage", "escalation"), ("triage",),
    "Commands for one incident: open, attach alert, acknowledge, resolve, escalation steps...",
)
INCIDENT_AUDIT = TopicSpec(
    "incident.audit", "incident id", m.AuditEvent,
    ("triage",), ("escalation", "notification", "metrics", "recorder"),
    "Every state change: incident.opened, incident.updated (with change), incident.closed.", public=True,
)
COMMAND_RESULTS = TopicSpec(
    "incident.command-results", "incident id", m.CommandResult,
    ("triage",), ("recorder",),
    "Whether each command was applied or rejected (and why).",
)
COMMUNICATIONS = TopicSpec(
    "incident.communications", "incident id", m.CommunicationRecord,
    ("notification",), ("recorder", "metrics"),
    "The communication log: every notification sent, failed or dead-lettered.",
)
DEADLINE_CHECKS = TopicSpec(
    "escalation.deadline-checks", "incident id", m.DeadlineCheck,
    ("escalation",), ("escalation",),
    "The escalation timer's nudges: look at this incident's deadlines again.",
)
WEBHOOK_RETRIES = TopicSpec(
    "notifications.webhook-retries", "incident id", m.WebhookDelivery,
    ("notification",), ("notification",),
    "Webhook posts waiting for their next attempt (back-off).",
)
HEARTBEAT_PINGS = TopicSpec(
    "heartbeats.pings", "heartbeat name", m.HeartbeatPing,
    ("ingestion",), ("escalation", "metrics"),
    "Heartbeat pings: each one moves its heartbeat's deadline; the first one arms it.",
)
HEARTBEAT_CHECKS = TopicSpec(
    "heartbeats.checks", "heartbeat name", m.HeartbeatCheck,
    ("escalation",), ("escalation",),
    "The heartbeat timer's nudges: look at this heartbeat's deadline again.",
)
ONCALL_OVERRIDES = TopicSpec(
    "oncall.overrides", "override id", m.RotationOverride,
    ("ingestion",), ("triage", "escalation", "recorder"),
    "On-call overrides made at runtime (API, incidentctl); the latest version of each (deleted_at when removed).",
    partitions=1, compacted=True,
)
MAINTENANCE_WINDOWS = TopicSpec(
    "maintenance.windows", "window id", m.MaintenanceWindow,
    ("ingestion",), ("escalation", "notification", "recorder"),
    "Maintenance windows; the latest version of each (deleted_at when ended early).",
    partitions=1, compacted=True,
)
NOTIFICATIONS_DEAD_LETTER = TopicSpec(
    "notifications.dead-letter", "incident id", m.WebhookDelivery,
    ("notification",), ("operators",),
    "Webhook posts that failed every attempt, with the last error.", public=True,
)
DEAD_LETTER = TopicSpec(
    "dead-letter", "source key", m.DeadLetter,
    ("triage", "escalation", "notification", "metrics", "recorder"), ("metrics", "operators"),
    "Poison messages: what could not be processed, where it came from and why.", public=True,
)
HEALTH_PROBES = TopicSpec(
    "health.probes", "service", m.Probe,
    ("every service",), ("every service",),
    "Readiness probes: each service sends one through its own producer and waits for its own consumer to see it.",
    configs=(("retention.ms", "3600000"),),
)

INTERNAL_AND_FIXED: tuple[TopicSpec, ...] = (
    ALERTS_INTAKE,
    TRIAGE_ALERTS,
    TRIAGE_CORRELATION,
    INCIDENT_COMMANDS,
    INCIDENT_AUDIT,
    COMMAND_RESULTS,
    COMMUNICATIONS,
    DEADLINE_CHECKS,
    WEBHOOK_RETRIES,
    NOTIFICATIONS_DEAD_LETTER,
    DEAD_LETTER,
    HEALTH_PROBES,
    HEARTBEAT_PINGS,
    HEARTBEAT_CHECKS,
    ONCALL_OVERRIDES,
    MAINTENANCE_WINDOWS,
)


def team_topic_name(team: str) -> str:
    return f"notifications.{team}"


def team_topic(team: str) -> TopicSpec:
    return TopicSpec(
        team_topic_name(team), "incident id", m.Notification,
        ("notification",), ("the team",),
        f"Notifications for team {team}.", public=True,
    )


def all_topics(org: Organisation | None = None) -> list[TopicSpec]:
    topics = list(INTERNAL_AND_FIXED)
    if org is not None:
        topics.extend(team_topic(team) for team in sorted(org.teams))
    return topics


def markdown_table() -> str:
    rows = [
        "| topic | key | value | partitions | producers | consumers | what |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    specs = [*INTERNAL_AND_FIXED, team_topic("<team>")]
    for spec in specs:
        partitions = "TOPIC_PARTITIONS" if spec.partitions == KEYED else str(spec.partitions)
        rows.append(
            f"| `{spec.name}` | {spec.key} | `{spec.value.__name__}` | {partitions} | "
            f"{', '.join(spec.producers)} | {', '.join(spec.consumers)} | {spec.description} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
