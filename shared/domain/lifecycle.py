"""The incident state machine: ``decide(state, command)`` returns events or raises Rejected.

Transitions (the README has the same table):

    triggered ──acknowledge──▶ acknowledged ──mitigation──▶ mitigating
        │  └──────────mitigation (implies acknowledge)──────────▲
        └──────────────┴──────── resolve ────────────▶ resolved ──close──▶ closed
                         resolved / closed ──reopen or recurrence──▶ triggered
"""
from __future__ import annotations

from datetime import datetime, timedelta

from .alerts import AlertAction, fold_ref
from .classification import Facts, classify
from .commands import (
    Acknowledge,
    AddActionItem,
    AddEvidence,
    AddMitigation,
    AttachAlerts,
    ChangeCommander,
    ChangeSeverity,
    Close,
    CompletePostmortem,
    EditPostmortem,
    HoldForMaintenance,
    MarkEscalationFailed,
    OpenIncident,
    PostUpdate,
    RecordEscalation,
    Reopen,
    Resolve,
    SendReminder,
    UpdateActionItem,
)
from . import postmortems
from .decisions import Context, NotFound, Rejected, require
from .detection import Detection
from .escalation import plan_for
from .events import (
    Acknowledged,
    AlertsAttached,
    CommanderChanged,
    EscalationFailed,
    Escalated,
    EvidenceAdded,
    MaintenanceHeld,
    MitigationAdded,
    MttrTargetBreached,
    Opened,
    Reopened,
    ReminderSent,
    Resolved,
    SeverityChanged,
    UpdatePosted,
    Closed,
    _Event,
)
from .incident import AttachedPlaybook, Incident, IncidentStatus, PlaybookStep
from .organisation import Organisation, Severity
from .rotations import on_call

T, A, M, R, C = (
    IncidentStatus.TRIGGERED,
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.MITIGATING,
    IncidentStatus.RESOLVED,
    IncidentStatus.CLOSED,
)
LIVE = (T, A, M, R)



def _mttr_target(org: Organisation, severity: Severity) -> float | None:
    target = org.mttr_targets.get(severity)
    return target.total_seconds() / 60.0 if target is not None else None


def decide(state: Incident | None, command, ctx: Context) -> list[_Event]:
    if isinstance(command, OpenIncident):
        if state is not None:
            return []  # already opened: a redelivered open is a no-op
        alert = command.alert
        refs = [fold_ref(None, alert, command.fingerprint or alert.alert_id)] if alert is not None else []
        incident = _new_incident(state, command, ctx)
        return [Opened(actor=ctx.actor, at=ctx.now, incident=incident, refs=refs,
                       alert_id=alert.alert_id if alert is not None else None,
                       detected_at_clamped=incident.detected_at_clamped)]
    if state is None:
        raise NotFound("no such incident")
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise Rejected(f"unknown command {type(command).__name__}")
    return handler(state, command, ctx)


def _new_incident(_: None, command: OpenIncident, ctx: Context) -> Incident:
    org = ctx.org
    alert = command.alert
    if alert is not None:
        facts = Facts(
            service=alert.service,
            alert_name=alert.name,
            source_severity=alert.source_severity,
            labels=alert.labels,
            annotations=alert.annotations,
        )
        title, detection = alert.summary, alert.detection(org.max_alert_age)
    else:
        facts = Facts(
            service=command.service or "unknown",
            alert_name=command.title or "",
            labels=command.labels,
            category=command.category,
        )
        title, detection = command.title or "Declared incident", Detection(ctx.now)
    verdict = classify(facts, org, severity_override=command.severity)
    team_config = org.teams.get(verdict.team)
    commander = command.commander
    if commander is None and team_config is not None and team_config.rotation:
        commander = on_call(org.rotations[team_config.rotation], ctx.now).primary
    playbook = None
    if verdict.playbook is not None:
        playbook = AttachedPlaybook(
            name=verdict.playbook.name,
            runbook_url=verdict.playbook.runbook_url,
            steps=[PlaybookStep(text=text) for text in verdict.playbook.steps],
        )
    links = list(command.links)
    annotations: dict[str, str] = {}
    labels = dict(command.labels)
    source = "declared"
    if alert is not None:
        links.extend(alert.links)
        annotations = dict(alert.annotations)
        labels = dict(alert.labels)
        source = alert.source
    if playbook is None and annotations.get("runbook_url"):
        playbook = AttachedPlaybook(name="alert runbook", runbook_url=annotations["runbook_url"], steps=[])
    return Incident(
        incident_id=command.incident_id,
        correlation_key=command.correlation_key,
        title=title,
        service=facts.service,
        team=verdict.team,
        severity=verdict.severity,
        category=verdict.category,
        impact=command.impact or verdict.impact,
        regulated=verdict.regulated,
        restricted=verdict.restricted,
        status=T,
        commander=commander,
        declared=alert is None,
        source=source,
        classification_rule=verdict.rule,
        labels=labels,
        annotations=annotations,
        links=links,
        playbook=playbook,
        escalation=plan_for(org, verdict.team, facts.service),
        alert_count=1 if alert is not None else 0,
        distinct_alerts=1 if alert is not None else 0,
        firing_alerts=1 if alert is not None and alert.action is not AlertAction.RESOLVE else 0,
        detected_at=detection.at,
        detected_at_clamped=detection.clamped_from,
        opened_at=ctx.now,
        updated_at=ctx.now,
        mttr_target_minutes=_mttr_target(org, verdict.severity),
        previous_incident_id=command.previous_incident_id,
    )


def _attach_alerts(state: Incident, command: AttachAlerts, ctx: Context) -> list[_Event]:
    """A batch of alerts folded into one: counted, and what they mean for the lifecycle.

    Within one batch only the net change counts: a fingerprint that resolves and fires
    again in the same batch simply fires. The command's alerts already applied (it was
    delivered again, cut differently) are recognised by triage before this is called.
    """
    actions = [origin.action for origin in command.origins]
    triggers = actions.count(AlertAction.TRIGGER)
    resolves = actions.count(AlertAction.RESOLVE)
    acknowledges = actions.count(AlertAction.ACKNOWLEDGE)
    actor = ctx.actor
    events: list[_Event] = []
    # Only a new trigger is a recurrence: an acknowledge from the source for an
    # incident that is already resolved must not reopen it.
    reopened = bool(triggers) and state.status in (R, C)
    if reopened:
        summary = command.first_trigger_summary or "an alert fired again"
        events.append(Reopened(actor=actor, at=ctx.now, reason=f"recurrence: {summary}", recurrence=True))
    # Detection is the earliest start any alert of this episode reports.
    earlier = clamped = None
    if triggers and state.status.is_open and command.detected_at is not None and command.detected_at < state.detected_at:
        earlier, clamped = command.detected_at, command.detected_at_clamped
    events.append(
        AlertsAttached(
            actor=actor, at=ctx.now, count=len(actions), firing=triggers, resolved=resolves, acknowledged=acknowledges,
            refs=command.refs, alerts=command.origins, firing_alerts=command.firing_alerts,
            distinct_alerts=command.distinct_alerts,
            detected_at=earlier, detected_at_clamped=clamped,
        )
    )
    status = T if reopened else state.status
    if acknowledges and status is T:
        events.append(Acknowledged(actor=actor, at=ctx.now, note="acknowledged by the monitoring source"))
    if resolves and command.firing_alerts == 0 and status.is_open:
        events.append(Resolved(actor=actor, at=ctx.now, by_monitoring=True, note="every alert resolved"))
        events.extend(postmortems.on_resolve(state, ctx))
    return events


def _acknowledge(state: Incident, command: Acknowledge, ctx: Context) -> list[_Event]:
    if state.status in (A, M):
        raise Rejected(f"already acknowledged ({state.status.value})")
    require(state, (T,), "acknowledge")
    return [Acknowledged(actor=ctx.actor, at=ctx.now, note=command.note)]


def _post_update(state: Incident, command: PostUpdate, ctx: Context) -> list[_Event]:
    require(state, LIVE, "post an update to")
    return [UpdatePosted(actor=ctx.actor, at=ctx.now, message=command.message)]


def _add_mitigation(state: Incident, command: AddMitigation, ctx: Context) -> list[_Event]:
    require(state, (T, A, M), "add a mitigation to")
    if command.playbook_step is not None:
        if state.playbook is None:
            raise Rejected("this incident has no playbook, so there is no step to tick")
        if command.playbook_step >= len(state.playbook.steps):
            raise Rejected(f"the playbook has {len(state.playbook.steps)} steps; step {command.playbook_step} does not exist")
    events: list[_Event] = []
    if state.status is T:
        events.append(Acknowledged(actor=ctx.actor, at=ctx.now, note="acknowledged by starting mitigation"))
    events.append(
        MitigationAdded(actor=ctx.actor, at=ctx.now, description=command.description, playbook_step=command.playbook_step)
    )
    return events


def _add_evidence(state: Incident, command: AddEvidence, ctx: Context) -> list[_Event]:
    require(state, LIVE, "add evidence to")
    if not command.url and not command.content:
        raise Rejected("evidence needs a url or a content")
    if command.content is not None and len(command.content.encode("utf-8")) > ctx.org.evidence_max_bytes:
        raise Rejected(f"evidence content is larger than {ctx.org.evidence_max_bytes} bytes; link to it instead")
    return [
        EvidenceAdded(
            actor=ctx.actor,
            at=ctx.now,
            evidence_id=f"EV-{state.version + 1}",
            title=command.title,
            url=command.url,
            content=command.content,
            media_type=command.media_type,
        )
    ]


def _change_severity(state: Incident, command: ChangeSeverity, ctx: Context) -> list[_Event]:
    require(state, LIVE, "change the severity of")
    if command.severity is state.severity:
        raise Rejected(f"severity is already {state.severity.value}")
    return [
        SeverityChanged(
            actor=ctx.actor,
            at=ctx.now,
            previous=state.severity,
            severity=command.severity,
            reason=command.reason,
            mttr_target_minutes=_mttr_target(ctx.org, command.severity),
        )
    ]


def _change_commander(state: Incident, command: ChangeCommander, ctx: Context) -> list[_Event]:
    require(state, LIVE, "change the commander of")
    if command.commander == state.commander:
        raise Rejected(f"{command.commander} is already the commander")
    return [
        CommanderChanged(
            actor=ctx.actor, at=ctx.now, previous=state.commander, commander=command.commander, reason=command.reason
        )
    ]


def _resolve(state: Incident, command: Resolve, ctx: Context) -> list[_Event]:
    if state.status in (R, C):
        raise Rejected(f"already {state.status.value}")
    return [Resolved(actor=ctx.actor, at=ctx.now, note=command.note), *postmortems.on_resolve(state, ctx)]


def _close(state: Incident, command: Close, ctx: Context) -> list[_Event]:
    require(state, (R,), "close")
    if state.requires_additional_actions and not postmortems.has_new_corrective_action(state):
        raise Rejected(
            "this incident was reopened: add an additional corrective action item to its postmortem before closing it"
        )
    return [Closed(actor=ctx.actor, at=ctx.now, verification=command.verification)]


def _reopen(state: Incident, command: Reopen, ctx: Context) -> list[_Event]:
    require(state, (R, C), "reopen")
    return [Reopened(actor=ctx.actor, at=ctx.now, reason=command.reason)]


def _record_escalation(state: Incident, command: RecordEscalation, ctx: Context) -> list[_Event]:
    if state.status is not T:
        raise Rejected(f"no escalation while the incident is {state.status.value}")
    if state.escalation_step is not None and tuple(state.escalation_step) >= (command.round, command.level):
        return []  # this level was already recorded
    return [
        Escalated(
            actor="escalation",
            at=ctx.now,
            round=command.round,
            level=command.level,
            targets=command.targets,
            timeout_seconds=command.timeout_seconds,
        )
    ]


def _escalation_failed(state: Incident, command: MarkEscalationFailed, ctx: Context) -> list[_Event]:
    if state.status is not T:
        raise Rejected(f"no escalation while the incident is {state.status.value}")
    if state.escalation_failed:
        return []
    return [EscalationFailed(actor="escalation", at=ctx.now, round=command.round, fallback_team=command.fallback_team)]


def _reminder(state: Incident, command: SendReminder, ctx: Context) -> list[_Event]:
    if command.reminder == "mttr_target_breached":
        if state.mttr_breached or not state.status.is_open:
            return []
        return [MttrTargetBreached(actor="system", at=ctx.now, target_minutes=state.mttr_target_minutes or 0)]
    if command.reminder == "update_due":
        if not state.status.is_open:
            return []
        return [ReminderSent(actor="system", at=ctx.now, change="update_due", due_at=command.due_at)]
    if state.postmortem is None or state.postmortem.status == "completed":
        return []
    return [ReminderSent(actor="system", at=ctx.now, change="postmortem_overdue", due_at=command.due_at)]


def _hold_for_maintenance(state: Incident, command: HoldForMaintenance, ctx: Context) -> list[_Event]:
    # A mark, not a transition: recorded on any incident not yet closed, once per window.
    if state.status is C or (state.maintenance is not None and state.maintenance.window_id == command.window_id
                             and state.maintenance.until == command.until):
        return []
    return [MaintenanceHeld(actor="escalation", at=ctx.now, window_id=command.window_id, reason=command.reason,
                            until=command.until)]


_HANDLERS = {
    AttachAlerts: _attach_alerts,
    Acknowledge: _acknowledge,
    PostUpdate: _post_update,
    AddMitigation: _add_mitigation,
    AddEvidence: _add_evidence,
    ChangeSeverity: _change_severity,
    ChangeCommander: _change_commander,
    Resolve: _resolve,
    Close: _close,
    Reopen: _reopen,
    RecordEscalation: _record_escalation,
    MarkEscalationFailed: _escalation_failed,
    SendReminder: _reminder,
    HoldForMaintenance: _hold_for_maintenance,
    EditPostmortem: postmortems.edit,
    AddActionItem: postmortems.add_action_item,
    UpdateActionItem: postmortems.update_action_item,
    CompletePostmortem: postmortems.complete,
}


def within_reopen_window(resolved_at: datetime | None, now: datetime, window: timedelta) -> bool:
    return resolved_at is not None and now - resolved_at <= window
