"""The audit chain: canonical form, verification naming the first broken link, and redelivery
that makes the same events (so the chain never forks)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.cli.main import main
from services.triage.handlers import IncidentRecord, applied_at, apply_command, open_command
from shared.domain.audit_chain import (
    CHAIN_FIELDS,
    GENESIS,
    BrokenLink,
    Verified,
    canonical,
    chain_summary,
    event_hash,
    verify,
    verify_bundle,
)
from shared.domain.alerts import correlation_key, fingerprint
from shared.domain.commands import Acknowledge, AddMitigation, PostUpdate, Resolve
from shared.messages import AuditEvent, CommandEnvelope, CorrelateAlert, Origin

INCIDENT = "INC-2026-03-02-001"


def _person(command, command_id: str) -> CommandEnvelope:
    return CommandEnvelope(command_id=command_id, incident_id=INCIDENT, actor="alice",
                           issued_at="2026-03-02T12:00:00Z", command=command)


def _history(org, make_alert, now) -> tuple[IncidentRecord, list[AuditEvent]]:
    """An incident opened by an alert, acknowledged, mitigated, updated and resolved through triage."""
    alert = make_alert()
    message = CorrelateAlert(alert=alert, fingerprint=fingerprint(alert, org), correlation_key=correlation_key(alert, org),
                             origin=Origin(topic="alerts.intake", partition=0, offset=0))
    commands = [open_command(message, INCIDENT, None), _person(Acknowledge(note="on it"), "c1"),
                _person(AddMitigation(description="failover to the replica"), "c2"),
                _person(PostUpdate(message="customers can pay again ✓"), "c3"), _person(Resolve(), "c4")]
    record, events = IncidentRecord(), []
    for offset, envelope in enumerate(commands):
        outcome = apply_command(record, envelope, offset, org, now + timedelta(minutes=offset))
        record = outcome.record
        events.extend(outcome.events)
    return record, events


def _rows(events: list[AuditEvent]) -> list[dict]:
    """The events as PostgreSQL gives them back: jsonb data, timestamptz in UTC, no snapshot."""
    rows = []
    for event in events:
        row = {name: getattr(event, name) for name in CHAIN_FIELDS}
        row["hash"] = event.hash
        row["data"] = json.loads(json.dumps(row["data"]))
        row["occurred_at"] = event.occurred_at.astimezone(timezone.utc).isoformat()
        row["recorded_at"] = "2026-03-02T13:00:00+00:00"
        rows.append(row)
    return rows


def test_each_event_carries_the_hash_of_the_one_before(org, make_alert, now):
    record, events = _history(org, make_alert, now)
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS
    for before, after in zip(events, events[1:]):
        assert after.prev_hash == before.hash
    assert all(e.hash == event_hash(e.model_dump()) for e in events)
    assert record.audit_head == events[-1].hash
    assert verify(INCIDENT, _rows(events), record.audit_head) == Verified(INCIDENT, len(events), 0, events[-1].hash)


def test_the_canonical_form_survives_what_storage_does_to_an_event():
    event = {"event_id": "I/v1", "incident_id": "I", "version": 1, "type": "incident.updated", "change": "x",
             "actor": "a", "summary": "é", "causation_id": None, "prev_hash": GENESIS,
             "occurred_at": datetime(2026, 3, 2, 13, 30, tzinfo=timezone(timedelta(hours=1))),
             "data": {"b": 5.0, "a": [1e16, 0.25], "when": "2026-03-02T12:30:00Z"}}
    stored = {**event, "occurred_at": "2026-03-02T12:30:00+00:00", "data": {"a": [10**16, 0.25], "b": 5,
              "when": "2026-03-02T12:30:00Z"}, "hash": "ignored", "recorded_at": "later", "incident": {"big": 1}}
    assert canonical(event) == canonical(stored)
    assert canonical(event).startswith(b'{"actor":"a","causation_id":null,"change":"x","data":{"a":[10000000000000000,')
    assert b'"occurred_at":"2026-03-02T12:30:00.000000Z"' in canonical(event) and b'"summary":"\\u00e9"' in canonical(event)
    with pytest.raises(ValueError, match="no UTC offset"):
        canonical({**event, "occurred_at": "2026-03-02T12:30:00"})


@pytest.mark.parametrize(("tamper", "version", "reason"), [
    (lambda rows: rows[2]["data"].update(description="nothing happened"), 3, "content does not match its hash"),
    (lambda rows: rows[1].update(actor="mallory"), 2, "content does not match its hash"),
    (lambda rows: rows[3].update(occurred_at="2026-03-02T09:00:00+00:00"), 4, "content does not match its hash"),
    (lambda rows: rows.pop(2), 4, "version 3 expected"),
    (lambda rows: rows[2].update(prev_hash=GENESIS), 3, "is not the previous event's hash"),
    (lambda rows: rows[3].update(hash=None), 4, "no hash after a chained event"),
])
def test_verification_names_the_first_broken_link(org, make_alert, now, tamper, version, reason):
    record, events = _history(org, make_alert, now)
    rows = _rows(events)
    tamper(rows)
    broken = verify(INCIDENT, rows, record.audit_head)
    assert isinstance(broken, BrokenLink)
    assert (broken.incident_id, broken.version, broken.event_id) == (INCIDENT, version, f"{INCIDENT}/v{version}")
    assert reason in broken.reason
    assert f"incident {INCIDENT}: broken at version {version}, event {INCIDENT}/v{version}" in str(broken)


def test_an_edit_that_rehashes_the_event_still_breaks_the_next_link(org, make_alert, now):
    record, events = _history(org, make_alert, now)
    rows = _rows(events)
    rows[1]["summary"] = "acknowledged by nobody"
    rows[1]["hash"] = event_hash(rows[1])
    broken = verify(INCIDENT, rows, record.audit_head)
    assert (broken.version, broken.event_id) == (3, f"{INCIDENT}/v3")


def test_the_head_must_be_the_last_events_hash(org, make_alert, now):
    record, events = _history(org, make_alert, now)
    rows = _rows(events)
    broken = verify(INCIDENT, rows[:-1], record.audit_head)  # the last event deleted
    assert isinstance(broken, BrokenLink) and broken.version == len(events) - 1 and "chain head" in broken.reason
    assert chain_summary(INCIDENT, rows, record.audit_head)["verified"] is True
    assert chain_summary(INCIDENT, rows, "0" * 64)["broken_at"]["version"] == len(events)


def test_events_from_before_the_chain_are_accepted_only_as_a_prefix(org, make_alert, now):
    _, events = _history(org, make_alert, now)
    rows = _rows(events)
    legacy = [{**row, "hash": None, "prev_hash": None, "version": i, "event_id": f"{INCIDENT}/v{i}"}
              for i, row in enumerate(rows[:2], start=1)]
    chained = [{**row, "version": row["version"] + 2, "event_id": f"{INCIDENT}/v{row['version'] + 2}"} for row in rows]
    prev = GENESIS
    for row in chained:  # a chain started after the migration, on an incident that had two events
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(row)
    verdict = verify(INCIDENT, legacy + chained, prev)
    assert isinstance(verdict, Verified) and verdict.unchained == 2 and verdict.events == len(rows) + 2


def test_redelivery_makes_the_same_events_so_the_chain_does_not_fork(org, make_alert, now):
    """A crash after the audit events were sent but before triage wrote its table: the command is
    delivered again to the record as it was, and must make byte-identical events."""
    record, events = _history(org, make_alert, now)
    update = _person(PostUpdate(message="root cause found"), "c5")
    written = now + timedelta(minutes=9)
    first = apply_command(record, update, 5, org, applied_at(record, written))
    again = apply_command(record, update, 5, org, applied_at(record, written))
    assert [e.model_dump_json() for e in again.events] == [e.model_dump_json() for e in first.events]
    assert again.record.audit_head == first.record.audit_head == first.events[-1].hash
    # Delivered again after the table was written: recognised, nothing made, the head unchanged.
    late = apply_command(first.record, update, 5, org, applied_at(first.record, written))
    assert late.duplicate and late.events == [] and late.record.audit_head == first.record.audit_head
    # The recorder keeps one row per event id: the chain it holds is whole and continues.
    follow = apply_command(again.record, _person(PostUpdate(message="fixed"), "c6"), 6, org, written)
    kept = _rows(events + first.events)
    assert follow.events[0].prev_hash == kept[-1]["hash"]
    assert isinstance(verify(INCIDENT, kept + _rows(follow.events), follow.record.audit_head), Verified)


def test_a_command_counts_as_applied_when_written_never_before_the_last_change(org, make_alert, now):
    record, _ = _history(org, make_alert, now)
    last = record.incident.updated_at
    assert applied_at(record, last + timedelta(seconds=3)) == last + timedelta(seconds=3)
    assert applied_at(record, last - timedelta(hours=1)) == last  # a producer's clock behind: order kept
    assert applied_at(IncidentRecord(), now) == now


def _bundle(events: list[AuditEvent], head: str | None) -> dict:
    return {"incident": {"incident_id": INCIDENT}, "audit_events": _rows(events),
            "audit_chain": chain_summary(INCIDENT, _rows(events), head)}


def test_incidentctl_verifies_a_saved_bundle_offline(org, make_alert, now, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INCIDENT_API_URL", "http://127.0.0.1:9")  # nothing listens: offline
    record, events = _history(org, make_alert, now)
    bundle = _bundle(events, record.audit_head)
    assert isinstance(verify_bundle(bundle), Verified)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert main(["export", INCIDENT, "--verify", "--file", str(path)]) == 0
    assert f"{INCIDENT}: audit chain intact ({len(events)} events)" in capsys.readouterr().out

    bundle["audit_events"][1]["data"]["note"] = "never acknowledged"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert main(["export", INCIDENT, "--verify", "--file", str(path)]) == 9
    err = capsys.readouterr().err
    assert f"audit chain broken: incident {INCIDENT}: broken at version 2, event {INCIDENT}/v2" in err
    assert main(["export", "INC-2026-03-02-002", "--verify", "--file", str(path)]) == 7
