"""Opening an incident and the commands that do not move its status much:
mitigation and playbooks, evidence, severity, commander, escalation records, reminders."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.alerts import AlertStatus, Link, fingerprint
from shared.domain.commands import (
    Acknowledge,
    AddEvidence,
    AddMitigation,
    ChangeCommander,
    ChangeSeverity,
    Close,
    CompletePostmortem,
    EditPostmortem,
    MarkEscalationFailed,
    RecordEscalation,
    Reopen,
    Resolve,
    SendReminder,
    AddActionItem,
)
from shared.domain.incident import IncidentStatus
from shared.domain.lifecycle import Rejected, within_reopen_window
from shared.domain.organisation import Category, Severity


# --- opening -----------------------------------------------------------------


def test_open_from_an_alert(open_incident, make_alert, org, now):
    alert = make_alert(
        starts_at=now - timedelta(minutes=7),
        annotations={"description": "lag"},
        links=[Link(href="https://grafana.example.com/d/1", text="graph")],
    )
    line = open_incident(alert)
    state = line.state
    assert state.status is IncidentStatus.TRIGGERED
    assert state.version == 1
    assert state.title == "ERP sync backlog"
    assert state.service == "connector:ERP"
    assert state.team == "integrations"
    assert state.severity is Severity.SEV3  # error on a tier-2 service: the source default
    assert state.category is Category.OPERATIONAL
    assert state.restricted is False and state.regulated is False
    assert state.classification_rule is None
    assert state.commander == "carol"  # integrations-oncall primary at NOW
    assert state.declared is False
    assert state.source == "alertmanager"
    assert state.detected_at == now - timedelta(minutes=7)  # the alert's start, not its arrival
    assert state.opened_at == now
    assert state.mttr_target_minutes == 24 * 60
    assert state.escalation is not None and state.escalation.policy == "standard"
    assert state.escalation.rotation == "integrations-oncall"
    assert [level.timeout_seconds for level in state.escalation.levels] == [300, 600, 900]
    assert state.labels == alert.labels
    assert state.annotations == {"description": "lag"}
    assert [link.href for link in state.links] == ["https://grafana.example.com/d/1"]
    assert state.playbook is None
    assert state.alert_count == 1
    assert state.distinct_alerts == state.firing_alerts == 1
    assert list(line.refs) == [fingerprint(alert, org)]  # kept beside the incident, not in it
    ref = line.refs[fingerprint(alert, org)]
    assert ref.fingerprint == ref.dedup_key == fingerprint(alert, org)
    assert ref.count == 1 and ref.status is AlertStatus.FIRING
    assert ref.first_seen == ref.last_seen == alert.received_at
    assert [m.change for m in state.milestones] == ["opened"]


def test_open_without_a_start_uses_the_arrival_time(open_incident, make_alert, now):
    line = open_incident(make_alert(received_at=now - timedelta(seconds=30)))
    assert line.state.detected_at == now - timedelta(seconds=30)


def test_open_with_an_explicit_commander_and_severity(open_incident):
    line = open_incident(commander="zed", severity=Severity.SEV1)
    assert line.state.commander == "zed"
    assert line.state.severity is Severity.SEV1
    assert line.state.mttr_target_minutes == 60


def test_open_a_declared_incident(open_incident, now):
    line = open_incident(
        declared=True,
        title="Checkout returns 500s",
        service="checkout-api",
        severity=Severity.SEV2,
        impact="customers cannot pay",
        labels={"region": "eu"},
        links=[Link(href="https://status.example.com")],
    )
    state = line.state
    assert state.declared is True
    assert state.source == "declared"
    assert state.title == "Checkout returns 500s"
    assert state.team == "payments"
    assert state.severity is Severity.SEV2
    assert state.impact == "customers cannot pay"
    assert state.distinct_alerts == state.alert_count == 0 and line.refs == {}
    assert state.detected_at == now
    assert state.labels == {"region": "eu"}
    # payments-oncall hands off at 09:00 New York time; NOW is 07:00 there, so the
    # previous week (index 7 -> erin) is still on call.
    assert state.commander == "erin"


def test_open_a_declared_incident_of_an_unknown_service(open_incident):
    line = open_incident(declared=True, title="Something odd")
    state = line.state
    assert state.service == "unknown"
    assert state.team == "incident-managers"  # the fallback team (no rotation)
    assert state.commander is None
    assert state.escalation is not None and state.escalation.policy == "standard"  # the default policy
    assert state.escalation.rotation is None
    assert state.severity is Severity.SEV3  # default_severity


def test_declared_security_incident_is_restricted_and_goes_to_security(open_incident):
    line = open_incident(declared=True, title="Leaked key", service="connector:ERP", category=Category.SECURITY)
    state = line.state
    assert state.category is Category.SECURITY
    assert state.restricted is True
    assert state.team == "security"
    assert state.commander == "heidi"  # security-oncall week 9 (index 8 % 2)
    assert state.escalation.policy == "security"
    assert state.playbook is not None and state.playbook.name == "security-response"


def test_open_attaches_the_matching_playbook(open_incident, make_alert):
    line = open_incident(make_alert(service="connector:CRM"))
    playbook = line.state.playbook
    assert playbook.name == "crm-connector"
    assert playbook.runbook_url == "https://runbooks.example.com/connectors/crm"
    assert [step.text for step in playbook.steps] == [
        "Check the CRM vendor status page",
        "Pause the sync job",
        "Replay the failed batches once the vendor recovers",
    ]
    assert not any(step.done for step in playbook.steps)


def test_an_alert_runbook_becomes_a_playbook_without_steps(open_incident, make_alert):
    line = open_incident(make_alert(annotations={"runbook_url": "https://runbooks.example.com/erp"}))
    assert line.state.playbook.name == "alert runbook"
    assert line.state.playbook.runbook_url == "https://runbooks.example.com/erp"
    assert line.state.playbook.steps == []


def test_a_configured_playbook_wins_over_the_alert_runbook(open_incident, make_alert):
    alert = make_alert(service="connector:CRM", annotations={"runbook_url": "https://elsewhere.example.com"})
    assert open_incident(alert).state.playbook.name == "crm-connector"


# --- mitigation and playbook steps ---------------------------------------------


def test_mitigation_from_triggered_implies_acknowledgement(open_incident):
    line = open_incident()
    at = line.advance(minutes=4)
    events = line.run(AddMitigation(description="restarted"), actor="bob")
    assert [e.change for e in events] == ["acknowledged", "mitigation_added"]
    assert events[0].actor == "bob" and events[0].note == "acknowledged by starting mitigation"
    assert events[1].description == "restarted"
    assert line.state.status is IncidentStatus.MITIGATING
    assert line.state.acknowledged_at == at
    assert line.state.version == 3


def test_mitigation_ticks_a_playbook_step(open_incident, make_alert):
    line = open_incident(make_alert(service="connector:CRM"))
    at = line.advance(minutes=2)
    line.run(AddMitigation(description="paused the sync", playbook_step=1), actor="bob")
    steps = line.state.playbook.steps
    assert [step.done for step in steps] == [False, True, False]
    assert steps[1].done_by == "bob" and steps[1].done_at == at
    line.run(AddMitigation(description="checked vendor", playbook_step=0), actor="carol")
    assert [step.done for step in line.state.playbook.steps] == [True, True, False]
    assert line.state.playbook.steps[1].done_by == "bob"


def test_mitigation_with_a_step_out_of_range_is_rejected(open_incident, make_alert):
    line = open_incident(make_alert(service="connector:CRM"))
    with pytest.raises(Rejected, match="3 steps; step 3 does not exist"):
        line.decide(AddMitigation(description="x", playbook_step=3))


def test_mitigation_with_a_step_but_no_playbook_is_rejected(open_incident):
    line = open_incident()
    assert line.state.playbook is None
    with pytest.raises(Rejected, match="no playbook"):
        line.decide(AddMitigation(description="x", playbook_step=0))


def test_mitigation_step_of_a_playbook_without_steps_is_rejected(open_incident, make_alert):
    line = open_incident(make_alert(annotations={"runbook_url": "https://runbooks.example.com/erp"}))
    with pytest.raises(Rejected, match="0 steps"):
        line.decide(AddMitigation(description="x", playbook_step=0))


def test_negative_playbook_step_is_invalid():
    with pytest.raises(ValueError):
        AddMitigation(description="x", playbook_step=-1)


# --- evidence -------------------------------------------------------------------


def test_evidence_needs_a_url_or_content(open_incident):
    line = open_incident()
    with pytest.raises(Rejected, match="url or a content"):
        line.decide(AddEvidence(title="nothing"))
    with pytest.raises(Rejected, match="url or a content"):
        line.decide(AddEvidence(title="empty", content="", url=""))


def test_evidence_with_a_url(open_incident):
    line = open_incident()
    events = line.run(AddEvidence(title="graph", url="https://grafana.example.com/d/1"))
    assert events[0].url == "https://grafana.example.com/d/1" and events[0].content is None
    assert events[0].evidence_id == "EV-2"


def test_evidence_content_up_to_the_limit(open_incident, org):
    line = open_incident()
    limit = org.evidence_max_bytes
    events = line.run(AddEvidence(title="log", content="x" * limit, media_type="text/x-log"))
    assert events[0].content == "x" * limit and events[0].media_type == "text/x-log"
    with pytest.raises(Rejected, match=f"larger than {limit} bytes"):
        line.decide(AddEvidence(title="log", content="x" * (limit + 1)))


def test_evidence_limit_counts_bytes_not_characters(open_incident, org):
    line = open_incident()
    content = "\u00e9" * (org.evidence_max_bytes // 2 + 1)  # 2 bytes each in UTF-8
    assert len(content) < org.evidence_max_bytes
    with pytest.raises(Rejected):
        line.decide(AddEvidence(title="log", content=content))


def test_evidence_limit_follows_the_configuration(open_incident, make_org):
    small = make_org(evidence_max_bytes=1024)
    line = open_incident(organisation=small)
    line.run(AddEvidence(title="ok", content="y" * 1024))
    with pytest.raises(Rejected, match="1024 bytes"):
        line.decide(AddEvidence(title="big", content="y" * 1025))


# --- severity and commander ------------------------------------------------------


def test_severity_change_to_the_same_severity_is_rejected(open_incident):
    line = open_incident()
    with pytest.raises(Rejected, match="already SEV3"):
        line.decide(ChangeSeverity(severity=Severity.SEV3, reason="same"))


@pytest.mark.parametrize(
    ("severity", "target_minutes"),
    [(Severity.SEV1, 60.0), (Severity.SEV2, 240.0), (Severity.SEV4, 3 * 24 * 60.0)],
)
def test_mttr_target_follows_the_severity(open_incident, severity, target_minutes):
    line = open_incident()
    assert line.state.mttr_target_minutes == 24 * 60.0
    events = line.run(ChangeSeverity(severity=severity, reason="re-triaged"))
    assert events[0].previous is Severity.SEV3
    assert events[0].mttr_target_minutes == target_minutes
    assert line.state.severity is severity
    assert line.state.mttr_target_minutes == target_minutes


def test_severity_without_a_configured_target_has_none(open_incident, make_org):
    line = open_incident(organisation=make_org(mttr_targets={"SEV3": "1d"}))
    line.run(ChangeSeverity(severity=Severity.SEV1, reason="worse"))
    assert line.state.mttr_target_minutes is None


def test_commander_change(open_incident):
    line = open_incident()
    events = line.run(ChangeCommander(commander="bob", reason="carol is off"))
    assert events[0].previous == "carol" and events[0].commander == "bob"
    assert line.state.commander == "bob"
    with pytest.raises(Rejected, match="bob is already the commander"):
        line.decide(ChangeCommander(commander="bob"))


# --- escalation records ------------------------------------------------------------


def test_record_escalation_while_triggered(open_incident):
    line = open_incident()
    events = line.run(RecordEscalation(round=0, level=0, targets=["person:carol"], timeout_seconds=300))
    assert [e.change for e in events] == ["escalated"]
    assert events[0].actor == "escalation"
    assert line.state.escalation_step == (0, 0)
    assert line.run(RecordEscalation(round=0, level=1, targets=["person:alice"], timeout_seconds=600))
    assert line.state.escalation_step == (0, 1)
    assert line.run(RecordEscalation(round=1, level=0, targets=["person:carol"], timeout_seconds=300))
    assert line.state.escalation_step == (1, 0)


def test_record_escalation_is_idempotent(open_incident):
    line = open_incident()
    line.run(RecordEscalation(round=0, level=1, targets=["person:alice"], timeout_seconds=600))
    version = line.state.version
    assert line.decide(RecordEscalation(round=0, level=1, targets=["person:alice"], timeout_seconds=600)) == []
    assert line.decide(RecordEscalation(round=0, level=0, targets=["person:carol"], timeout_seconds=300)) == []
    assert line.state.version == version


@pytest.mark.parametrize("path", [[Acknowledge()], [Resolve()], [Resolve(), Close(verification="ok")]])
def test_record_escalation_only_while_triggered(open_incident, path):
    line = open_incident()
    for command in path:
        line.run(command)
    status = line.state.status.value
    with pytest.raises(Rejected, match=f"while the incident is {status}"):
        line.decide(RecordEscalation(round=0, level=0, targets=["person:carol"], timeout_seconds=300))
    with pytest.raises(Rejected, match=f"while the incident is {status}"):
        line.decide(MarkEscalationFailed(round=1, fallback_team="incident-managers"))


def test_escalation_failed_once(open_incident):
    line = open_incident()
    events = line.run(MarkEscalationFailed(round=1, fallback_team="incident-managers"))
    assert [e.change for e in events] == ["escalation_failed"]
    assert events[0].fallback_team == "incident-managers" and events[0].round == 1
    assert line.state.escalation_failed is True
    assert line.decide(MarkEscalationFailed(round=1, fallback_team="incident-managers")) == []


def test_reopen_starts_escalation_afresh(open_incident):
    line = open_incident()
    line.run(RecordEscalation(round=1, level=2, targets=["team:integrations"], timeout_seconds=900))
    line.run(MarkEscalationFailed(round=1, fallback_team="incident-managers"))
    line.run(Resolve())
    line.run(Reopen(reason="again"))
    assert line.state.escalation_step is None
    assert line.state.escalation_failed is False
    assert line.run(RecordEscalation(round=0, level=0, targets=["person:carol"], timeout_seconds=300))
    assert line.run(MarkEscalationFailed(round=1, fallback_team="incident-managers"))


# --- reminders -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [[], [Acknowledge()], [AddMitigation(description="x")]])
def test_update_due_while_open(open_incident, path):
    line = open_incident()
    for command in path:
        line.run(command)
    events = line.run(SendReminder(reminder="update_due", due_at="2026-03-02T13:00:00Z"))
    assert [(e.change, e.due_at, e.actor) for e in events] == [("update_due", "2026-03-02T13:00:00Z", "system")]


@pytest.mark.parametrize("path", [[Resolve()], [Resolve(), Close(verification="ok")]])
def test_no_update_due_once_resolved(open_incident, path):
    line = open_incident()
    for command in path:
        line.run(command)
    assert line.decide(SendReminder(reminder="update_due", due_at="x")) == []


def test_postmortem_overdue_needs_an_incomplete_postmortem(open_incident):
    line = open_incident(severity=Severity.SEV2)
    reminder = SendReminder(reminder="postmortem_overdue", due_at="2026-03-07T12:00:00Z")
    assert line.decide(reminder) == []  # no postmortem yet
    line.run(Resolve())
    assert line.state.postmortem.reminders_sent == 0
    assert [e.change for e in line.run(reminder)] == ["postmortem_overdue"]
    assert line.state.postmortem.reminders_sent == 1
    line.run(SendReminder(reminder="postmortem_overdue", due_at="2026-03-08T12:00:00Z"))
    assert line.state.postmortem.reminders_sent == 2
    line.run(EditPostmortem(summary="s", root_cause="r"))
    line.run(AddActionItem(title="t", owner="bob"))
    line.run(CompletePostmortem())
    assert line.decide(reminder) == []
    assert line.state.postmortem.reminders_sent == 2


def test_mttr_target_breached_once(open_incident):
    line = open_incident(severity=Severity.SEV1)
    reminder = SendReminder(reminder="mttr_target_breached", due_at="2026-03-02T13:00:00Z")
    events = line.run(reminder)
    assert [e.change for e in events] == ["mttr_target_breached"]
    assert events[0].target_minutes == 60
    assert line.state.mttr_breached is True
    assert line.decide(reminder) == []


def test_mttr_target_breached_not_after_resolution(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    assert line.decide(SendReminder(reminder="mttr_target_breached", due_at="x")) == []


def test_reopen_window(now):
    window = timedelta(hours=72)
    assert within_reopen_window(now - window, now, window) is True
    assert within_reopen_window(now - window - timedelta(seconds=1), now, window) is False
    assert within_reopen_window(now, now, window) is True
    assert within_reopen_window(None, now, window) is False
