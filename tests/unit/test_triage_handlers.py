"""Triage's routing and command application: dedup on redelivery, reopen vs new incident."""
from __future__ import annotations

from datetime import timedelta

import pytest

from services.triage.handlers import (
    Attach,
    CorrelationRecord,
    Drop,
    FingerprintRecord,
    IncidentRecord,
    OpenNew,
    apply_command,
    apply_link,
    correlation_for,
    open_command,
    route_alert,
)
from shared.domain.alerts import AlertAction, correlation_key, fingerprint
from shared.domain.commands import Acknowledge, Close
from shared.domain.incident import IncidentStatus
from shared.messages import CommandEnvelope, CorrelateAlert, IncidentLink, Origin


def _message(org, alert, offset=0, partition=0):
    fp = fingerprint(alert, org)
    return CorrelateAlert(alert=alert, fingerprint=fp, correlation_key=correlation_key(alert, org),
                          origin=Origin(topic="alerts.intake", partition=partition, offset=offset))


def _attach(*messages, incident_id="INC-2026-03-02-001", firing=1, distinct=1):
    """The folded command triage makes of ``messages`` for one incident."""
    from services.triage.folding import IncidentFold

    fold = IncidentFold(incident_id=incident_id, firing=firing, distinct=distinct)
    for message in messages:
        fold.add(message, None)
    return fold.command()


def _opened(org, make_alert, now):
    message = _message(org, make_alert())
    outcome = apply_command(IncidentRecord(), open_command(message, "INC-2026-03-02-001", None), 0, org, now)
    return message, outcome


def test_first_alert_opens_then_attaches_while_open(org, make_alert, now):
    message = _message(org, make_alert())
    assert route_alert(CorrelationRecord(), message, org, now) == OpenNew(previous_incident_id=None)
    record = CorrelationRecord(incident_id="INC-1", status=IncidentStatus.ACKNOWLEDGED)
    assert route_alert(record, message, org, now) == Attach("INC-1")
    assert route_alert(CorrelationRecord(incident_id="INC-1"), message, org, now) == Attach("INC-1")


def test_recurrence_inside_the_window_reopens_after_it_opens_a_new_incident(org, make_alert, now):
    message = _message(org, make_alert())
    recent = CorrelationRecord(incident_id="INC-1", status=IncidentStatus.CLOSED, resolved_at=now - timedelta(hours=71))
    assert route_alert(recent, message, org, now) == Attach("INC-1")
    old = CorrelationRecord(incident_id="INC-1", status=IncidentStatus.CLOSED, resolved_at=now - timedelta(hours=73))
    assert route_alert(old, message, org, now) == OpenNew(previous_incident_id="INC-1")


def test_resolve_or_acknowledge_without_an_incident_is_dropped_with_a_reason(org, make_alert, now):
    resolved = _message(org, make_alert(action=AlertAction.RESOLVE))
    assert isinstance(route_alert(CorrelationRecord(), resolved, org, now), Drop)
    ack = _message(org, make_alert(action=AlertAction.ACKNOWLEDGE))
    assert "acknowledge" in route_alert(CorrelationRecord(), ack, org, now).reason
    # After the window a resolve still goes to the old incident (recorded, no reopen).
    old = CorrelationRecord(incident_id="INC-1", status=IncidentStatus.CLOSED, resolved_at=now - timedelta(days=9))
    assert route_alert(old, resolved, org, now) == Attach("INC-1")


def test_links_follow_only_the_current_incident_and_newer_versions(org):
    record = CorrelationRecord(incident_id="INC-2", version=3)
    older_incident = IncidentLink(correlation_key="k", incident_id="INC-1", status=IncidentStatus.CLOSED, version=9)
    assert apply_link(record, older_incident) is record
    stale = IncidentLink(correlation_key="k", incident_id="INC-2", status=IncidentStatus.RESOLVED, version=2)
    assert apply_link(record, stale) is record
    fresh = IncidentLink(correlation_key="k", incident_id="INC-2", status=IncidentStatus.RESOLVED, version=4)
    assert apply_link(record, fresh).status is IncidentStatus.RESOLVED


def test_a_resolve_naming_only_its_key_follows_the_trigger(org, make_alert):
    trigger = make_alert(service="connector:CRM", dedup_key="pd:k1")
    record = FingerprintRecord(correlation_key=correlation_key(trigger, org), service="connector:CRM",
                               alert_name=trigger.name)
    bare = make_alert(service="unknown", summary="resolve pd:k1", dedup_key="pd:k1", action=AlertAction.RESOLVE)
    key, completed = correlation_for(record, bare, org)
    assert key == record.correlation_key
    assert completed.service == "connector:CRM"
    fresh_key, same = correlation_for(None, trigger, org)
    assert fresh_key == correlation_key(trigger, org) and same is trigger


def test_open_then_attach_counts_and_redelivery_changes_nothing(org, make_alert, now):
    message, outcome = _opened(org, make_alert, now)
    assert outcome.events[0].type == "incident.opened"
    assert outcome.link is not None and outcome.link.status is IncidentStatus.TRIGGERED
    record = outcome.record
    again = apply_command(record, open_command(message, "INC-2026-03-02-001", None), 0, org, now)
    assert again.duplicate and not again.events

    second = _message(org, make_alert(), offset=5)
    attached = apply_command(record, _attach(second), 1, org, now)
    assert attached.record.incident.alert_count == 2
    # The same alert re-sent upstream (a new commands offset, the same origin) is recognised.
    resent = apply_command(attached.record, _attach(second), 2, org, now)
    assert resent.duplicate and resent.record.incident.alert_count == 2
    assert resent.record.applied_offset == 2


def test_a_folded_command_delivered_again_cut_differently_applies_only_what_is_new(org, make_alert, now):
    _, outcome = _opened(org, make_alert, now)
    alerts = [_message(org, make_alert(dedup_key=f"fp-{i}"), offset=10 + i) for i in range(6)]
    first = apply_command(outcome.record, _attach(*alerts[:4]), 1, org, now)
    assert first.record.incident.alert_count == 5
    # The correlator restarted before it recorded its batch, and folded 0..5 as one.
    again = apply_command(first.record, _attach(*alerts), 2, org, now)
    assert not again.duplicate and again.record.incident.alert_count == 7
    assert again.events[0].data["count"] == 2
    assert apply_command(again.record, _attach(*alerts), 3, org, now).duplicate


def test_positions_are_kept_per_source_partition(org, make_alert, now):
    _, outcome = _opened(org, make_alert, now)
    a = _message(org, make_alert(dedup_key="fp-a"), offset=11, partition=1)
    b = _message(org, make_alert(dedup_key="fp-b"), offset=10, partition=2)
    first = apply_command(outcome.record, _attach(a), 1, org, now)
    # An older offset of another partition is not a duplicate.
    second = apply_command(first.record, _attach(b), 2, org, now)
    assert not second.duplicate and second.record.incident.alert_count == 3


def _person(command, command_id="c1"):
    return CommandEnvelope(command_id=command_id, incident_id="INC-2026-03-02-001", actor="alice",
                           issued_at="2026-03-02T12:00:00Z", command=command)


def test_person_commands_dedup_by_id_and_rejections_carry_the_reason(org, make_alert, now):
    _, outcome = _opened(org, make_alert, now)
    acked = apply_command(outcome.record, _person(Acknowledge()), 1, org, now)
    assert acked.result.outcome == "applied" and acked.record.incident.status is IncidentStatus.ACKNOWLEDGED
    assert acked.link is not None
    retry = apply_command(acked.record, _person(Acknowledge()), 2, org, now)
    assert retry.duplicate
    refused = apply_command(acked.record, _person(Close(verification="done"), "c2"), 3, org, now)
    assert refused.result.outcome == "rejected" and "acknowledged" in refused.result.reason
    assert refused.record.incident.version == acked.record.incident.version


def test_a_command_for_an_unknown_incident_is_not_found(org, now):
    outcome = apply_command(IncidentRecord(), _person(Acknowledge()), 0, org, now)
    assert outcome.result.outcome == "not_found"


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_command_ids_are_stable_for_redelivered_alerts(org, make_alert, status):
    message = _message(org, make_alert(action=AlertAction.RESOLVE if status == "resolved" else AlertAction.TRIGGER), offset=7)
    assert _attach(message).command_id == _attach(message).command_id
    assert open_command(message, "X", None).command_id == "open:alerts.intake:0:7"


def _unchecked(command, command_id="c9"):
    """A command the API sent while PostgreSQL was away, for an actor who may not see restricted incidents."""
    return _person(command, command_id).model_copy(update={"unrestricted_only": True})


def test_an_unchecked_command_on_a_restricted_incident_is_not_found(org, make_alert, now):
    security = make_alert(labels={"alertname": "Intrusion", "instance": "erp-1", "category": "security"})
    opened = apply_command(IncidentRecord(), open_command(_message(org, security), "INC-2026-03-02-001", None), 0,
                           org, now)
    assert opened.record.incident.restricted
    refused = apply_command(opened.record, _unchecked(Acknowledge()), 1, org, now)
    assert refused.result.outcome == "not_found" and refused.record.incident.version == opened.record.incident.version
    # The same actor's command, checked by the API first, is applied as usual.
    checked = apply_command(opened.record, _person(Acknowledge()), 2, org, now)
    assert checked.result.outcome == "applied"


def test_an_unchecked_command_on_an_unrestricted_incident_is_applied(org, make_alert, now):
    _, opened = _opened(org, make_alert, now)
    assert not opened.record.incident.restricted
    acked = apply_command(opened.record, _unchecked(Acknowledge()), 1, org, now)
    assert acked.result.outcome == "applied" and acked.record.incident.status is IncidentStatus.ACKNOWLEDGED
