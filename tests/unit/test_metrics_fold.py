"""Folding messages into the metrics tables: real lifecycles in, facts and counts out;
redelivered messages change nothing."""
from __future__ import annotations

import json
from datetime import timedelta

from services.metrics import handlers
from shared.audit import audit_event
from shared.domain import metrics as m
from shared.domain.commands import (
    Acknowledge,
    AddActionItem,
    ChangeSeverity,
    Close,
    CompletePostmortem,
    EditPostmortem,
    MarkEscalationFailed,
    RecordEscalation,
    Reopen,
    Resolve,
    SendReminder,
)
from shared.domain.events import evolve
from shared.domain.organisation import Severity
from shared.messages import CommunicationRecord, DeadLetter, NativeAlert, Origin


def run(line, *commands):
    for command in commands:
        line.run(command)


def audits(line):
    """Every audit message of the line's history, as triage publishes them (state after each event)."""
    state, messages = None, []
    for event in line.history:
        state = evolve(state, event)
        messages.append(audit_event(event, state, None))
    assert state == line.state
    return messages


def fold_all(messages, value=None):
    for message in messages:
        updated = handlers.fold_audit(value, message)
        if updated is not None:
            value = updated
    return m.IncidentFacts.model_validate(value)


def counts(facts):
    return {m.parse_counter_key(k): v for k, v in facts.counts.items()}


# --- audit events -> incident facts ------------------------------------------------


def test_a_whole_life_folds_into_facts_and_counts(open_incident):
    line = open_incident(severity=Severity.SEV2)
    opened_at = line.now
    line.advance(minutes=4)
    line.run(Acknowledge(), actor="carol")
    line.advance(minutes=40)
    line.run(Resolve())
    messages = audits(line)
    facts = fold_all(messages)
    assert (facts.severity, facts.status, facts.team, facts.service) == ("SEV2", "resolved", "integrations", "connector:ERP")
    assert facts.opened_at == opened_at
    assert facts.first_acknowledged_at == opened_at + timedelta(minutes=4)
    assert facts.first_resolved_at == facts.resolved_at == opened_at + timedelta(minutes=44)
    assert (facts.postmortem_required, facts.postmortem_status) == (True, "draft")
    assert facts.postmortem_due_at == facts.postmortem_created_at + timedelta(days=5)
    assert facts.mttr_target_minutes == 240
    assert facts.last_version == line.state.version == len(messages)
    assert counts(facts) == {
        ("incidents_opened_total", (("severity", "SEV2"), ("service", "connector:ERP"))): 1,
        ("incidents_acknowledged_total", (("severity", "SEV2"),)): 1,
        ("incidents_resolved_total", (("severity", "SEV2"),)): 1,
    }


def test_redelivered_and_older_versions_change_nothing(open_incident):
    line = open_incident()
    run(line, Acknowledge(), Resolve())
    messages = audits(line)
    value = None
    for message in messages:
        value = handlers.fold_audit(value, message)
    for message in messages:  # the whole stream again, as after a restart before a commit
        assert handlers.fold_audit(value, message) is None
    assert m.IncidentFacts.model_validate(value) == fold_all(messages)


def test_reopen_keeps_the_first_acknowledgement_and_resolution(open_incident):
    line = open_incident(severity=Severity.SEV1)
    start = line.now
    line.run(Acknowledge())
    line.advance(minutes=30)
    run(line, Resolve(), AddActionItem(title="fix", owner="bob"), Close(verification="ok"))
    line.advance(hours=2)
    line.run(Reopen(reason="it recurred"))
    earlier = audits(line)
    facts = fold_all(earlier)
    assert facts.status == "triggered" and facts.reopen_count == 1
    assert facts.first_acknowledged_at == start
    assert facts.first_resolved_at == facts.resolved_at == start + timedelta(minutes=30)
    line.advance(minutes=5)
    line.run(Acknowledge())
    line.advance(minutes=25)
    run(line, Resolve(), AddActionItem(title="the real fix", owner="bob"), Close(verification="ok"))
    # Folding continues from the stored value, as the table does.
    facts = fold_all(audits(line)[len(earlier):], value=facts.model_dump(mode="json"))
    assert facts.status == "closed" and facts.reopen_count == 1
    assert facts.first_acknowledged_at == start  # not the second acknowledgement
    assert facts.first_resolved_at == start + timedelta(minutes=30)
    assert facts.resolved_at == start + timedelta(minutes=30 + 120 + 30)
    c = counts(facts)
    sev1 = (("severity", "SEV1"),)
    assert c[("incidents_acknowledged_total", sev1)] == 2
    assert c[("incidents_resolved_total", sev1)] == 2
    assert c[("incidents_closed_total", sev1)] == 2
    assert c[("incidents_reopened_total", sev1)] == 1
    window = timedelta(days=30)
    assert m.mttr_minutes([facts], line.now, window) == {"SEV1": (180.0, 1)}
    assert m.reopen_rate([facts], line.now, window) == {"SEV1": (1.0, 1)}


def test_counters_carry_the_labels_of_their_moment(open_incident):
    line = open_incident()  # SEV3
    run(line, ChangeSeverity(severity=Severity.SEV1, reason="customers affected"), Resolve())
    facts = fold_all(audits(line))
    assert facts.severity == "SEV1"
    c = counts(facts)
    assert c[("incidents_opened_total", (("severity", "SEV3"), ("service", "connector:ERP")))] == 1
    assert c[("incidents_resolved_total", (("severity", "SEV1"),))] == 1
    assert facts.mttr_target_minutes == 60


def test_escalations_breaches_and_reminders_are_counted(open_incident):
    line = open_incident(severity=Severity.SEV2)
    run(
        line,
        RecordEscalation(round=0, level=0, targets=["carol"], timeout_seconds=300),
        RecordEscalation(round=0, level=1, targets=["alice"], timeout_seconds=300),
        RecordEscalation(round=0, level=1, targets=["alice"], timeout_seconds=300),  # a repeat: no event
        MarkEscalationFailed(round=0, fallback_team="incident-managers"),
        SendReminder(reminder="mttr_target_breached", due_at="x"),
        Resolve(),
        SendReminder(reminder="postmortem_overdue", due_at="y"),
        SendReminder(reminder="postmortem_overdue", due_at="z"),
    )
    c = counts(fold_all(audits(line)))
    team = (("team", "integrations"),)
    assert c[("escalations_total", team)] == 2
    assert c[("escalation_failures_total", team)] == 1
    assert c[("mttr_target_breaches_total", (("severity", "SEV2"),))] == 1
    assert c[("postmortem_reminders_total", team)] == 2


def test_postmortem_completion_reaches_the_facts(open_incident):
    line = open_incident(severity=Severity.SEV1)
    run(line, Resolve(), EditPostmortem(summary="s", root_cause="r"), AddActionItem(title="t", owner="bob"),
        CompletePostmortem())
    facts = fold_all(audits(line))
    assert (facts.postmortem_required, facts.postmortem_status) == (True, "completed")


# --- communications ----------------------------------------------------------------


def record(record_id, status="sent", channel="kafka:notifications.pager", team="pager"):
    return CommunicationRecord(record_id=record_id, incident_id="INC-1", channel=channel, team=team, kind="opened",
                               status=status, text="t", occurred_at="2026-03-02T12:00:00Z")


def test_communications_are_counted_once_per_record_id():
    value = None
    for item in [record("n1"), record("n2"), record("n1"), record("w1", "failed", "webhook:pager"),
                 record("w2", "dead_lettered", "webhook:pager"), record("s1", "suppressed")]:
        updated = handlers.fold_communication(value, item)
        value = updated if updated is not None else value
    assert handlers.fold_communication(value, record("n2")) is None
    assert handlers.fold_communication(value, record("s1", "suppressed")) is None
    totals = m.counter_totals(handlers.notification_counts([value]))
    assert totals == {
        ("notifications_sent_total", (("team", "pager"), ("channel", "kafka"))): 2,
        ("notifications_failed_total", (("team", "pager"), ("channel", "webhook"))): 2,
    }


def test_the_first_outcome_of_a_record_id_wins_like_the_database():
    value = handlers.fold_communication(None, record("w1", "failed", "webhook:pager"))
    assert handlers.fold_communication(value, record("w1", "sent", "webhook:pager")) is None


# --- intake and dead letters (counted by offset) -----------------------------------


def origin(topic, offset, partition=0):
    return Origin(topic=topic, partition=partition, offset=offset)


def alert(integration=None):
    return NativeAlert(service="svc", summary="s", integration=integration).model_dump_json().encode()


def letter(source_topic="alerts.intake", service="triage", reason="invalid message: service: Field required"):
    return DeadLetter(source_topic=source_topic, reason=reason, payload="{}", service=service,
                      failed_at="2026-03-02T12:00:00Z").model_dump_json().encode()


def fold_positioned(messages, value=None):
    for where, payload in messages:
        updated = handlers.fold_positioned(value, where, payload, "metrics")
        value = updated if updated is not None else value
    return value


def totals_of(value):
    return m.counter_totals([value["counts"]]) if value else {}


def test_alerts_received_by_integration():
    value = fold_positioned([
        (origin("alerts.intake", 0), alert("alertmanager")),
        (origin("alerts.intake", 1), alert("pagerduty")),
        (origin("alerts.intake", 2), alert()),
        (origin("alerts.intake", 3), b"not json"),
    ])
    assert totals_of(value) == {
        ("alerts_received_total", (("integration", "alertmanager"),)): 1,
        ("alerts_received_total", (("integration", "pagerduty"),)): 1,
        ("alerts_received_total", (("integration", "kafka"),)): 1,
        ("alerts_received_total", (("integration", "unparseable"),)): 1,
    }
    assert value["offset"] == 3


def test_redelivered_offsets_are_not_counted_again():
    value = fold_positioned([(origin("alerts.intake", 5), alert("alertmanager"))])
    for offset in (3, 5):
        assert handlers.fold_positioned(value, origin("alerts.intake", offset), alert("alertmanager"), "metrics") is None
    value = fold_positioned([(origin("alerts.intake", 6), alert("alertmanager"))], value)
    assert totals_of(value) == {("alerts_received_total", (("integration", "alertmanager"),)): 2}


def test_rejected_alerts_are_dead_letters_of_the_alert_path():
    value = fold_positioned([
        (origin("dead-letter", 0), letter()),
        (origin("dead-letter", 1), letter("triage.alerts", reason="processing failed: KeyError: x")),
        (origin("dead-letter", 2), letter("incident.commands")),  # not an alert
        (origin("dead-letter", 3), letter(service="metrics")),  # the metrics service's own
        (origin("dead-letter", 4), b"{}"),  # not a dead letter at all
    ])
    assert totals_of(value) == {
        ("alerts_rejected_total", (("reason", "invalid message"),)): 1,
        ("alerts_rejected_total", (("reason", "processing failed"),)): 1,
    }
    assert value["offset"] == 4


def test_every_record_round_trips_through_json():
    value = fold_positioned([(origin("alerts.intake", 0), alert("x"))])
    assert json.loads(json.dumps(value)) == value
