"""Alerts on an existing incident: deduplication, auto-resolve, recurrence, acknowledge."""
from __future__ import annotations

import pytest

from shared.domain.alerts import AlertAction, AlertStatus, fingerprint
from shared.domain.commands import Acknowledge, AddMitigation, Close, Resolve
from shared.domain.incident import IncidentStatus
from shared.domain.organisation import Severity


def attach(line, *alerts):
    return line.attach(*alerts)


def changes(events):
    return [event.change for event in events]


def test_same_fingerprint_counts_and_keeps_first_seen(open_incident, make_alert, org, now):
    first = make_alert()
    line = open_incident(first)
    later = line.advance(minutes=2)
    again = make_alert(received_at=later, summary="ERP sync backlog (still)")
    events = attach(line, again)
    assert changes(events) == ["alerts_attached"]
    assert events[0].actor == "monitoring:alertmanager"
    assert events[0].count == 1 and events[0].firing == 1
    fp = fingerprint(first, org)
    assert fingerprint(again, org) == fp
    assert list(line.refs) == [fp] and line.state.distinct_alerts == 1
    ref = line.refs[fp]
    assert ref.count == 2
    assert ref.first_seen == now
    assert ref.last_seen == later
    assert ref.summary == "ERP sync backlog (still)"
    assert line.state.alert_count == 2
    assert line.state.status is IncidentStatus.TRIGGERED

    attach(line, make_alert(received_at=line.advance(minutes=1)))
    assert line.refs[fp].count == 3
    assert line.refs[fp].first_seen == now
    assert line.state.alert_count == 3


def test_a_second_fingerprint_adds_an_alert(open_incident, make_alert, org):
    first = make_alert()
    line = open_incident(first)
    second = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-2"}, received_at=line.advance(minutes=1))
    assert fingerprint(second, org) != fingerprint(first, org)
    attach(line, second)
    assert set(line.refs) == {fingerprint(first, org), fingerprint(second, org)}
    assert line.refs[fingerprint(second, org)].count == 1
    assert line.refs[fingerprint(second, org)].first_seen == line.now
    assert line.refs[fingerprint(first, org)].count == 1
    assert line.state.alert_count == 2
    assert line.state.firing_alerts == 2


def test_a_source_dedup_key_is_kept_on_the_alert(open_incident, make_alert, org):
    line = open_incident(make_alert(dedup_key="pd-123"))
    assert list(line.refs) == ["pd-123"]
    assert line.refs["pd-123"].dedup_key == "pd-123"


@pytest.mark.parametrize("path", [[], [Acknowledge()], [AddMitigation(description="x")]])
def test_every_alert_resolved_resolves_the_incident(open_incident, make_alert, org, path):
    one = make_alert()
    two = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-2"})
    line = open_incident(one)
    attach(line, two)
    for command in path:
        line.run(command)
    status = line.state.status

    events = attach(line, make_alert(action=AlertAction.RESOLVE, received_at=line.advance(minutes=5)))
    assert changes(events) == ["alerts_attached"]  # erp-2 still fires
    assert line.state.status is status
    assert line.refs[fingerprint(one, org)].status is AlertStatus.RESOLVED
    assert line.state.firing_alerts == 1

    resolved_at = line.advance(minutes=5)
    events = attach(line, make_alert(labels=two.labels, action=AlertAction.RESOLVE, received_at=resolved_at))
    assert changes(events) == ["alerts_attached", "resolved"]
    assert events[1].by_monitoring is True
    assert events[1].actor == "monitoring:alertmanager"
    assert line.state.status is IncidentStatus.RESOLVED
    assert line.state.resolved_at == resolved_at
    assert line.state.firing_alerts == 0
    assert line.state.postmortem is None  # SEV3: none required
    assert line.state.milestones[-1].summary == "resolved by monitoring (every alert resolved)"


def test_auto_resolve_of_a_sev2_creates_the_postmortem(open_incident, make_alert):
    line = open_incident(severity=Severity.SEV2)
    events = attach(line, make_alert(action=AlertAction.RESOLVE))
    assert changes(events) == ["alerts_attached", "resolved", "postmortem_created"]
    assert line.state.postmortem is not None and line.state.postmortem.required is True


def test_a_resolved_alert_for_a_new_fingerprint_resolves_when_nothing_fires(open_incident, make_alert):
    line = open_incident()
    attach(line, make_alert(action=AlertAction.RESOLVE))
    assert line.state.status is IncidentStatus.RESOLVED
    other = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-9"}, action=AlertAction.RESOLVE)
    events = attach(line, other)
    assert changes(events) == ["alerts_attached"]  # already resolved: no second resolution, no reopen


@pytest.mark.parametrize("path", [[Resolve()], [Resolve(), Close(verification="ok")]])
def test_a_firing_alert_reopens_a_resolved_or_closed_incident(open_incident, make_alert, path):
    line = open_incident()
    for command in path:
        line.advance(minutes=10)
        line.run(command)
    at = line.advance(hours=2)
    events = attach(line, make_alert(received_at=at, summary="ERP sync backlog again"))
    assert changes(events) == ["reopened", "alerts_attached"]
    assert events[0].recurrence is True
    assert events[0].reason == "recurrence: ERP sync backlog again"
    assert events[0].actor == "monitoring:alertmanager"
    state = line.state
    assert state.status is IncidentStatus.TRIGGERED
    assert state.reopen_count == 1
    assert state.requires_additional_actions is True
    assert state.closed_at is None
    assert state.firing_alerts == 1
    assert state.incident_id == "INC-2026-03-02-001"  # the same incident, not a new one


def test_a_firing_alert_on_an_open_incident_does_not_reopen(open_incident, make_alert):
    line = open_incident()
    line.run(Acknowledge())
    events = attach(line, make_alert())
    assert changes(events) == ["alerts_attached"]
    assert line.state.reopen_count == 0
    assert line.state.status is IncidentStatus.ACKNOWLEDGED


def test_recurrence_after_auto_resolve_then_resolve_again(open_incident, make_alert, org):
    one = make_alert()
    two = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-2"})
    line = open_incident(one)
    attach(line, two)
    attach(line, make_alert(action=AlertAction.RESOLVE))
    attach(line, make_alert(labels=two.labels, action=AlertAction.RESOLVE))
    assert line.state.status is IncidentStatus.RESOLVED

    attach(line, make_alert(received_at=line.advance(hours=1)))  # erp-1 recurs
    assert line.state.status is IncidentStatus.TRIGGERED
    assert line.refs[fingerprint(two, org)].status is AlertStatus.RESOLVED
    events = attach(line, make_alert(action=AlertAction.RESOLVE, received_at=line.advance(minutes=5)))
    assert changes(events) == ["alerts_attached", "resolved"]


def test_an_acknowledge_from_the_source_acknowledges_a_triggered_incident(open_incident, make_alert):
    line = open_incident(make_alert(dedup_key="pd-1"))
    at = line.advance(minutes=3)
    events = attach(line, make_alert(dedup_key="pd-1", action=AlertAction.ACKNOWLEDGE, received_at=at))
    assert changes(events) == ["alerts_attached", "acknowledged"]
    assert events[1].actor == "monitoring:alertmanager"
    assert line.state.status is IncidentStatus.ACKNOWLEDGED
    assert line.state.acknowledged_at == at
    assert line.refs["pd-1"].status is AlertStatus.FIRING  # acknowledged is not resolved
    assert line.refs["pd-1"].count == 2


@pytest.mark.parametrize("path", [[Acknowledge()], [AddMitigation(description="x")]])
def test_an_acknowledge_from_the_source_on_an_acknowledged_incident_only_records(open_incident, make_alert, path):
    line = open_incident(make_alert(dedup_key="pd-1"))
    for command in path:
        line.run(command)
    status = line.state.status
    events = attach(line, make_alert(dedup_key="pd-1", action=AlertAction.ACKNOWLEDGE))
    assert changes(events) == ["alerts_attached"]
    assert line.state.status is status


@pytest.mark.parametrize("path", [[Resolve()], [Resolve(), Close(verification="ok")]])
def test_an_acknowledge_from_the_source_does_not_reopen(open_incident, make_alert, path):
    line = open_incident(make_alert(dedup_key="pd-1"))
    for command in path:
        line.run(command)
    status = line.state.status
    events = attach(line, make_alert(dedup_key="pd-1", action=AlertAction.ACKNOWLEDGE))
    assert changes(events) == ["alerts_attached"]
    assert line.state.status is status
    assert line.state.reopen_count == 0


def test_a_declared_incident_takes_alerts_and_resolves_with_them(open_incident, make_alert):
    line = open_incident(declared=True, title="ERP is slow", service="connector:ERP")
    attach(line, make_alert())
    assert line.state.alert_count == 1 and line.state.firing_alerts == 1
    events = attach(line, make_alert(action=AlertAction.RESOLVE, received_at=line.advance(minutes=1)))
    assert changes(events) == ["alerts_attached", "resolved"]


def test_an_alert_that_started_earlier_moves_detection_back(org, now, make_alert):
    from datetime import timedelta

    from conftest import Timeline
    from shared.domain.commands import OpenIncident

    line = Timeline(org, now)
    late = make_alert(dedup_key="pd:x")  # a PagerDuty event: no start time, detected on receipt
    line.run(OpenIncident(incident_id="INC-2026-03-02-001", correlation_key="k", alert=late, fingerprint="pd:x"))
    started = line.state.detected_at - timedelta(minutes=7)
    events = line.attach(make_alert(dedup_key="am:y", starts_at=started))
    assert line.state.detected_at == started and events[0].detected_at == started
    # A later start changes nothing.
    line.attach(make_alert(dedup_key="am:z", starts_at=started + timedelta(minutes=30)))
    assert line.state.detected_at == started


def test_a_batch_of_alerts_is_one_event_with_the_counts_and_the_references(open_incident, make_alert, org):
    line = open_incident(make_alert())
    hosts = [make_alert(labels={"alertname": "QueueBacklog", "instance": f"erp-{i}"}) for i in range(2, 12)]
    events = attach(line, *hosts, make_alert(), make_alert(action=AlertAction.RESOLVE))
    assert changes(events) == ["alerts_attached"]
    event = events[0]
    assert (event.count, event.firing, event.resolved) == (12, 11, 1)
    # Each fingerprint once, as it stands after the batch, labels included.
    assert len(event.refs) == 11
    assert {ref.labels["instance"] for ref in event.refs} == {f"erp-{i}" for i in range(1, 12)}
    erp1 = line.refs[fingerprint(make_alert(), org)]
    assert erp1.count == 3 and erp1.status is AlertStatus.RESOLVED
    assert (line.state.alert_count, line.state.distinct_alerts, line.state.firing_alerts) == (13, 11, 10)


def test_within_a_batch_only_the_net_change_counts(open_incident, make_alert, org):
    line = open_incident(make_alert())
    events = attach(line, make_alert(action=AlertAction.RESOLVE), make_alert())
    assert changes(events) == ["alerts_attached"]  # resolved and fired again: it fires, no resolution
    assert line.state.status is IncidentStatus.TRIGGERED and line.state.firing_alerts == 1


def test_the_incident_record_does_not_grow_with_its_alerts(open_incident, make_alert):
    line = open_incident(make_alert())
    attach(line, *[make_alert(labels={"alertname": "QueueBacklog", "instance": f"h{i}"}) for i in range(10)])
    small = len(line.state.model_dump_json())
    attach(line, *[make_alert(labels={"alertname": "QueueBacklog", "instance": f"h{i}"}) for i in range(10, 2010)])
    assert line.state.distinct_alerts == 2011
    assert len(line.state.model_dump_json()) <= small + 10  # only the counters' digits grew


def test_alerts_folded_with_the_opening_alert_count_its_fingerprint_once(org, make_alert):
    from services.triage.folding import IncidentFold
    from shared.messages import CorrelateAlert, Origin

    def message(alert, offset):
        return CorrelateAlert(alert=alert, fingerprint=fingerprint(alert, org), correlation_key="k",
                              origin=Origin(topic="alerts.intake", partition=0, offset=offset))

    # The opening alert and its repeats in one batch: one fingerprint, resolved at the end.
    fold = IncidentFold(incident_id="INC-1", firing=0, distinct=0)
    fold.opening(message(make_alert(), 0))
    fold.add(message(make_alert(), 1), None)
    fold.add(message(make_alert(action=AlertAction.RESOLVE), 2), None)
    command = fold.command().command
    assert (command.distinct_alerts, command.firing_alerts) == (1, 0)
    assert [ref.count for ref in command.refs] == [3]
