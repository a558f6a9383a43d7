"""The incident state machine: every (status, command) pair, versions and audit types.

The table below IS the transition table: each cell says what a command does in a
status, either the resulting status and the events (allowed) or REJECTED.
"""
from __future__ import annotations

import re

import pytest

from shared.domain.commands import (
    Acknowledge,
    AddEvidence,
    AddMitigation,
    ChangeCommander,
    ChangeSeverity,
    Close,
    OpenIncident,
    PostUpdate,
    Reopen,
    Resolve,
)
from shared.domain.events import Closed, Opened, evolve
from shared.domain.incident import IncidentStatus
from shared.domain.lifecycle import NotFound, Rejected, decide
from shared.domain.organisation import Severity

T, A, M, R, C = "triggered", "acknowledged", "mitigating", "resolved", "closed"
STATUSES = (T, A, M, R, C)
REJECTED = "REJECTED"

# The incident under test is SEV3 (no postmortem is created on resolve), so each
# allowed cell lists every event the command produces.
COMMANDS = {
    "Acknowledge": Acknowledge(note="on it"),
    "AddMitigation": AddMitigation(description="restarted the sync worker"),
    "Resolve": Resolve(note="backlog drained"),
    "Close": Close(verification="no errors for an hour"),
    "Reopen": Reopen(reason="backlog is growing again"),
    "PostUpdate": PostUpdate(message="still investigating"),
    "AddEvidence": AddEvidence(title="dashboard", url="https://grafana.example.com/d/erp"),
    "ChangeSeverity": ChangeSeverity(severity=Severity.SEV1, reason="customers affected"),
    "ChangeCommander": ChangeCommander(commander="zed", reason="hand-over"),
}

TRANSITIONS: dict[str, dict[str, object]] = {
    #                 from triggered                                    from acknowledged                  from mitigating                    from resolved                 from closed
    "Acknowledge":     {T: (A, ["acknowledged"]),                          A: REJECTED,                       M: REJECTED,                       R: REJECTED,                  C: REJECTED},
    "AddMitigation":   {T: (M, ["acknowledged", "mitigation_added"]),      A: (M, ["mitigation_added"]),      M: (M, ["mitigation_added"]),      R: REJECTED,                  C: REJECTED},
    "Resolve":         {T: (R, ["resolved"]),                              A: (R, ["resolved"]),              M: (R, ["resolved"]),              R: REJECTED,                  C: REJECTED},
    "Close":           {T: REJECTED,                                       A: REJECTED,                       M: REJECTED,                       R: (C, ["closed"]),           C: REJECTED},
    "Reopen":          {T: REJECTED,                                       A: REJECTED,                       M: REJECTED,                       R: (T, ["reopened"]),         C: (T, ["reopened"])},
    "PostUpdate":      {T: (T, ["update_posted"]),                         A: (A, ["update_posted"]),         M: (M, ["update_posted"]),         R: (R, ["update_posted"]),    C: REJECTED},
    "AddEvidence":     {T: (T, ["evidence_added"]),                        A: (A, ["evidence_added"]),        M: (M, ["evidence_added"]),        R: (R, ["evidence_added"]),   C: REJECTED},
    "ChangeSeverity":  {T: (T, ["severity_changed"]),                      A: (A, ["severity_changed"]),      M: (M, ["severity_changed"]),      R: (R, ["severity_changed"]), C: REJECTED},
    "ChangeCommander": {T: (T, ["commander_changed"]),                     A: (A, ["commander_changed"]),     M: (M, ["commander_changed"]),     R: (R, ["commander_changed"]), C: REJECTED},
}

CASES = [(status, name, TRANSITIONS[name][status]) for name in TRANSITIONS for status in STATUSES]


def drive_to(line, status: str):
    """Reach ``status`` from a fresh triggered incident through ordinary commands."""
    path = {
        T: [],
        A: [Acknowledge()],
        M: [Acknowledge(), AddMitigation(description="failover")],
        R: [Acknowledge(), AddMitigation(description="failover"), Resolve()],
        C: [Acknowledge(), AddMitigation(description="failover"), Resolve(), Close(verification="verified")],
    }[status]
    for command in path:
        line.advance(minutes=5)
        line.run(command)
    assert line.state.status.value == status
    return line


def test_the_table_covers_every_status_and_command():
    assert set(TRANSITIONS) == set(COMMANDS)
    for name, row in TRANSITIONS.items():
        assert set(row) == set(STATUSES), name
    assert len(CASES) == 45


@pytest.mark.parametrize(("status", "name", "expected"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_transition_table(open_incident, status, name, expected):
    line = drive_to(open_incident(), status)
    assert line.state.severity is Severity.SEV3
    before = line.state.model_copy(deep=True)
    line.advance(minutes=1)
    command = COMMANDS[name]

    if expected == REJECTED:
        with pytest.raises(Rejected) as info:
            line.decide(command)
        assert re.search(rf"\b{status}\b", str(info.value)), str(info.value)
        assert line.state == before  # a rejected command changes nothing
        return

    result_status, changes = expected
    events = line.run(command)
    assert [event.change for event in events] == changes
    assert line.state.status.value == result_status
    assert line.state.version == before.version + len(changes)
    assert all(event.at == line.now for event in events)


def test_forbidden_message_names_the_allowed_statuses(open_incident):
    line = open_incident()
    with pytest.raises(Rejected, match=r"cannot close an incident that is triggered \(allowed from: resolved\)"):
        line.decide(Close(verification="x"))
    with pytest.raises(Rejected, match=r"cannot reopen an incident that is triggered \(allowed from: resolved, closed\)"):
        line.decide(Reopen(reason="x"))


def test_transition_timestamps(open_incident):
    line = open_incident()
    assert line.state.acknowledged_at is None
    ack_at = line.advance(minutes=3)
    line.run(Acknowledge())
    assert line.state.acknowledged_at == ack_at
    resolved_at = line.advance(minutes=30)
    line.run(Resolve())
    assert line.state.resolved_at == resolved_at
    assert line.state.mttr_minutes == 33.0
    closed_at = line.advance(hours=1)
    line.run(Close(verification="ok"))
    assert line.state.closed_at == closed_at
    assert line.state.mttr_minutes == 33.0
    line.advance(hours=1)
    line.run(Reopen(reason="again"))
    state = line.state
    assert state.status is IncidentStatus.TRIGGERED
    assert state.closed_at is None and state.acknowledged_at is None
    assert state.reopen_count == 1
    assert state.requires_additional_actions is True
    assert state.mttr_minutes is None  # open again: no MTTR until it resolves again


def test_resolve_straight_from_triggered_keeps_no_acknowledgement(open_incident):
    line = open_incident()
    line.run(Resolve())
    assert line.state.status is IncidentStatus.RESOLVED
    assert line.state.acknowledged_at is None


def test_commands_on_a_missing_incident_raise_not_found(timeline):
    line = timeline()
    for command in COMMANDS.values():
        with pytest.raises(NotFound):
            line.decide(command)


def test_open_is_idempotent(open_incident, make_alert):
    line = open_incident()
    again = OpenIncident(incident_id=line.state.incident_id, correlation_key="whatever", alert=make_alert())
    assert line.decide(again) == []
    assert line.state.version == 1


def test_evolve_without_a_state_needs_opened(now):
    with pytest.raises(ValueError, match="needs an existing incident"):
        evolve(None, Closed(actor="alice", at=now, verification="x"))


def test_versions_increase_by_one_and_audit_types(open_incident, make_alert, org):
    from shared.domain.commands import AddActionItem, EditPostmortem, CompletePostmortem

    line = open_incident(severity=Severity.SEV2)
    for command in [
        Acknowledge(),
        PostUpdate(message="looking"),
        AddEvidence(title="log", content="boom"),
        AddMitigation(description="scaled up"),
        ChangeCommander(commander="bob"),
        Resolve(),
        EditPostmortem(summary="s", root_cause="r"),
        AddActionItem(title="alert earlier", owner="bob"),
        CompletePostmortem(),
        Close(verification="fine"),
    ]:
        line.advance(minutes=1)
        line.run(command)
    line.advance(minutes=1)
    recurring = make_alert()
    line.attach(recurring)

    history = line.history
    assert line.state.version == len(history)
    versions = []
    state = None
    for event in history:
        state = evolve(state, event)
        versions.append(state.version)
    assert versions == list(range(1, len(history) + 1))
    assert state == line.state  # replaying the history rebuilds the same state

    audit = {event.change: event.audit_type for event in history}
    assert audit.pop("opened") == "incident.opened"
    assert audit.pop("closed") == "incident.closed"
    assert set(audit) >= {
        "acknowledged", "update_posted", "evidence_added", "mitigation_added", "commander_changed", "resolved",
        "postmortem_created", "postmortem_edited", "action_item_added", "postmortem_completed", "reopened",
        "alerts_attached",
    }
    assert set(audit.values()) == {"incident.updated"}
    assert isinstance(history[0], Opened)


def test_milestones_record_lifecycle_changes_but_not_alerts(open_incident, make_alert, org):
    line = open_incident()
    line.attach(make_alert())
    line.run(Acknowledge(), actor="carol")
    line.run(AddEvidence(title="x", url="https://x.example.com"))
    milestones = line.state.milestones
    assert [m.change for m in milestones] == ["opened", "acknowledged"]
    assert milestones[1].actor == "carol"
    assert milestones[1].summary == "acknowledged by carol"
    assert milestones[0].summary == "opened SEV3 on connector:ERP: ERP sync backlog"


def test_decide_does_not_mutate_the_state(open_incident):
    line = open_incident()
    before = line.state.model_copy(deep=True)
    events = decide(line.state, Acknowledge(), line.ctx())
    assert events and line.state == before
