"""Who is told what: which incident changes notify which teams, the text, and back-off."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .incident import Incident
from .organisation import NotificationPolicy, Organisation

# Every lifecycle change and escalation step notifies; alert attachments do not
# (an alert storm would otherwise flood the team topic).
NOTIFYING = {
    "opened": "opened",
    "acknowledged": "acknowledged",
    "mitigation_added": "updated",
    "update_posted": "updated",
    "severity_changed": "updated",
    "commander_changed": "updated",
    "resolved": "resolved",
    "closed": "closed",
    "reopened": "reopened",
    "escalated": "escalated",
    "escalation_failed": "escalation_failed",
    "update_due": "reminder",
    "postmortem_overdue": "reminder",
    "mttr_target_breached": "mttr_target_breached",
    "postmortem_created": "postmortem",
    "postmortem_completed": "postmortem",
}
# Kinds that can repeat for one incident: held back with a growing interval.
BACKED_OFF = {"update_due", "postmortem_overdue", "mttr_target_breached"}
# A change that makes a repeating kind news again: its back-off starts over.
RESETS_BACKOFF = {"update_posted": {"update_due"}, "reopened": BACKED_OFF, "postmortem_completed": {"postmortem_overdue"}}
# What the compliance team hears about a regulated incident: its milestones and its failures.
COMPLIANCE_CHANGES = {"opened", "resolved", "closed", "reopened", "escalation_failed", "mttr_target_breached"}


@dataclass(frozen=True)
class Outgoing:
    team: str
    kind: str
    change: str
    text: str
    targets: tuple[str, ...] = ()


def _headline(incident: Incident) -> str:
    return f"[{incident.severity.value}] {incident.incident_id} {incident.service}: {incident.title}"


def render(change: str, incident: Incident, data: dict[str, Any], summary: str) -> str:
    head = _headline(incident)
    who = f" Commander: {incident.commander}." if incident.commander else ""
    runbook = f" Runbook: {incident.playbook.runbook_url}" if incident.playbook else " No playbook for this incident."
    if change == "opened":
        return f"Incident opened {head}. Impact: {incident.impact}.{who}{runbook}"
    if change == "escalated":
        return f"Paging {', '.join(data.get('targets', []))} for {head} (escalation level {data.get('level', 0) + 1}, nobody has acknowledged).{runbook}"
    if change == "escalation_failed":
        return f"ESCALATION FAILED for {head}: nobody acknowledged after every level. Incident managers, take command.{runbook}"
    if change == "update_due":
        return f"Status update overdue for {head}.{who} Post an update (incidentctl update)."
    if change == "postmortem_overdue":
        owner = incident.postmortem.owner if incident.postmortem else None
        return f"Postmortem overdue for {head}. Owner: {owner or 'unassigned'}."
    if change == "mttr_target_breached":
        return f"MTTR target ({incident.mttr_target_minutes:g} min) breached for {head}.{who}"
    return f"{head}: {summary}."


def plan(change: str, incident: Incident, data: dict[str, Any], summary: str, org: Organisation) -> list[Outgoing]:
    kind = NOTIFYING.get(change)
    if kind is None:
        return []
    text = render(change, incident, data, summary)
    targets = tuple(data.get("targets", ())) if change == "escalated" else ()
    if incident.commander and change in ("update_due", "mttr_target_breached"):
        targets = (f"person:{incident.commander}",)
    if change == "postmortem_overdue" and incident.postmortem and incident.postmortem.owner:
        targets = (f"person:{incident.postmortem.owner}",)
    teams = [incident.team]
    # A security (restricted) incident is told only on the security team's topic: not to
    # the fallback channel, not to compliance, so its existence stays restricted.
    if not incident.restricted:
        if change == "escalation_failed":
            teams.append(data.get("fallback_team") or org.fallback_team)
        if incident.regulated and org.compliance_team and change in COMPLIANCE_CHANGES:
            teams.append(org.compliance_team)
    seen: list[str] = []
    for team in teams:
        if team not in seen:
            seen.append(team)
    return [Outgoing(team=team, kind=kind, change=change, text=text, targets=targets) for team in seen]


def back_off(
    change: str, last_sent: datetime | None, interval: timedelta | None, now: datetime, policy: NotificationPolicy
) -> tuple[bool, timedelta | None]:
    """(send now?, the interval to hold back the next one of this kind)."""
    if change not in BACKED_OFF:
        return True, interval
    if last_sent is not None and interval is not None and now < last_sent + interval:
        return False, interval
    following = policy.repeat_backoff if interval is None else min(interval * 2, policy.repeat_backoff_max)
    return True, following
