"""The recorder's pure parts: references from both event formats, the outage rule, the projection."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from asyncpg.exceptions import _base

from shared.db.alert_refs import _Newest, refs_of
from shared.db.incident_rows import BESIDE, UPSERT_INCIDENT
from shared.db.unavailable import refused, unavailable
from shared.domain.alerts import AlertRef
from shared.domain.incident import Incident, Milestone, minutes_to_resolve
from shared.domain.incident_summary import FIELDS, IncidentSummary
from shared.messages import AuditEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _ref(fp: str, count: int, **extra) -> dict:
    return {"fingerprint": fp, "summary": "down", "name": "HostDown", "status": "firing", "count": count,
            "first_seen": T0.isoformat(), "last_seen": (T0 + timedelta(seconds=count)).isoformat(),
            "source": "alertmanager", **extra}


def _event(change: str, data: dict, incident: dict | None = None) -> AuditEvent:
    return AuditEvent(event_id="INC-1/v2", type="incident.updated", change=change, incident_id="INC-1",
                      occurred_at=T0, actor="monitoring:am", version=2, summary="x", data=data,
                      incident=incident or {})


def test_new_format_attach_carries_every_reference_with_labels():
    refs = refs_of(_event("alerts_attached", {"count": 2, "refs": [
        _ref("a", 3, labels={"instance": "host-a"}), _ref("b", 1, labels={"instance": "host-b"})]}))
    assert [(r.fingerprint, r.count, r.labels) for r in refs] == [("a", 3, {"instance": "host-a"}),
                                                                  ("b", 1, {"instance": "host-b"})]


def test_new_format_opened_carries_its_opening_reference():
    refs = refs_of(_event("opened", {"refs": [_ref("a", 1, labels={"instance": "h"})]}, {"alerts": {}}))
    assert [(r.fingerprint, r.labels) for r in refs] == [("a", {"instance": "h"})]
    assert refs_of(_event("opened", {"refs": []})) == []  # declared by hand


def test_old_format_attach_and_opened_are_still_read():
    assert [r.fingerprint for r in refs_of(_event("alert_attached", {"alert_id": "x", "alert": _ref("a", 2)}))] == ["a"]
    assert refs_of(_event("alert_resolved", {"alert": {**_ref("a", 3), "status": "resolved"}}))[0].status.value == "resolved"
    # Old opened: the reference sits in the snapshot, and the incident's labels are its alert's.
    opened = _event("opened", {}, {"alerts": {"a": _ref("a", 1)}, "labels": {"instance": "host-a"}})
    assert [(r.fingerprint, r.labels) for r in refs_of(opened)] == [("a", {"instance": "host-a"})]


def test_other_changes_carry_no_references():
    assert refs_of(_event("acknowledged", {"note": None})) == []


def test_a_batch_keeps_the_newest_reference_per_fingerprint_whatever_the_order():
    newer, older = AlertRef.model_validate(_ref("a", 5)), AlertRef.model_validate(_ref("a", 4))
    assert _Newest.of([("INC-1", newer), ("INC-1", older)]).refs == {("INC-1", "a"): newer}
    assert _Newest.of([("INC-1", older), ("INC-1", newer), ("INC-2", older)]).refs == {
        ("INC-1", "a"): newer, ("INC-2", "a"): older}


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock"),
    asyncpg.InterfaceError("connection is closed"),
    # A query on a connection the server terminated under it (fast shutdown).
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ConnectionRefusedError(111, "refused"),
    asyncio.TimeoutError(),
])
def test_a_database_that_is_away_is_waited_for(exc):
    assert unavailable(exc) and not refused(exc)


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.UniqueViolationError("duplicate"),
    asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence"),
    asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
    asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
    _base.DataError("invalid input for query argument $3: 3000000000 (value out of int32 range)"),
    KeyError("message"),
])
def test_a_refused_row_is_not_mistaken_for_an_outage(exc):
    assert refused(exc) and not unavailable(exc)


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.UndefinedTableError('relation "audit_events" does not exist'),
    asyncpg.exceptions.InsufficientPrivilegeError("permission denied for table incidents"),
])
def test_a_broken_deployment_is_neither_waited_for_nor_blamed_on_the_row(exc):
    # The recorder stops (its supervisor restarts it) rather than dead-letter every message.
    assert not refused(exc) and not unavailable(exc)


def _incident(**changes) -> Incident:
    base = dict(incident_id="INC-1", correlation_key="k", title="t", service="s", team="integrations",
                severity="SEV2", category="operational", impact="i", status="resolved", detected_at=T0,
                opened_at=T0 + timedelta(minutes=1), resolved_at=T0 + timedelta(minutes=45, seconds=30),
                updated_at=T0, version=4)
    return Incident(**{**base, **changes})


def test_mttr_is_one_definition():
    incident = _incident()
    assert incident.mttr_minutes == 45.5 == round(minutes_to_resolve(incident.detected_at, incident.resolved_at), 2)
    assert _incident(status="triggered").mttr_minutes is None


def test_the_projection_flattens_the_incident():
    resolved_first = T0 + timedelta(minutes=10)
    incident = _incident(milestones=[
        Milestone(at=T0, change="opened", summary="", actor="a"),
        Milestone(at=resolved_first, change="resolved", summary="", actor="a"),
        Milestone(at=T0 + timedelta(minutes=20), change="reopened", summary="", actor="a"),
        Milestone(at=T0 + timedelta(minutes=45), change="resolved", summary="", actor="a"),
    ])
    row = IncidentSummary.of(incident)
    assert row.first_resolved_at == resolved_first
    assert row.mttr_minutes == incident.mttr_minutes
    assert row.postmortem_status is None and row.version == 4
    # The upsert names every field of the projection, and the record.
    for name in (*FIELDS, *BESIDE):
        assert name in UPSERT_INCIDENT
