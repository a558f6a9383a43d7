"""Postmortems: created on resolve when required, completed only when complete, and
the reopen rule (no second close without a new corrective action)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from shared.domain.commands import (
    Acknowledge,
    AddActionItem,
    AddMitigation,
    ChangeCommander,
    Close,
    CompletePostmortem,
    EditPostmortem,
    Reopen,
    Resolve,
    UpdateActionItem,
)
from shared.domain.incident import IncidentStatus
from shared.domain.lifecycle import NotFound, Rejected
from shared.domain.organisation import Severity


def changes(events):
    return [event.change for event in events]


def stamp(at, text):
    return f"{at:%Y-%m-%d %H:%M:%S}Z {text}"


# --- creation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "created"),
    [(Severity.SEV1, True), (Severity.SEV2, True), (Severity.SEV3, False), (Severity.SEV4, False)],
)
def test_postmortem_created_on_resolve_for_sev1_and_sev2(open_incident, severity, created):
    line = open_incident(severity=severity)
    events = line.run(Resolve())
    if created:
        assert changes(events) == ["resolved", "postmortem_created"]
        assert events[1].actor == "system"
        assert line.state.postmortem.required is True
        assert line.state.postmortem.status == "draft"
    else:
        assert changes(events) == ["resolved"]
        assert line.state.postmortem is None


def test_postmortem_draft_is_prefilled(open_incident, now, org):
    line = open_incident(severity=Severity.SEV2)
    opened_at = now
    ack_at = line.advance(minutes=5)
    line.run(Acknowledge(), actor="carol")
    mitigated_at = line.advance(minutes=10)
    line.run(AddMitigation(description="restarted the worker"), actor="carol")
    changed_at = line.advance(minutes=1)
    line.run(ChangeCommander(commander="bob"), actor="carol")
    resolved_at = line.advance(minutes=20)
    line.run(Resolve(), actor="bob")

    postmortem = line.state.postmortem
    assert postmortem.owner == "bob"  # the commander at resolution
    assert postmortem.created_at == resolved_at
    assert postmortem.due_at == resolved_at + timedelta(days=5)
    assert postmortem.due_at == resolved_at + org.postmortem.due_after
    assert postmortem.impact == line.state.impact
    assert postmortem.timeline == [
        stamp(opened_at, "opened SEV2 on connector:ERP: ERP sync backlog"),
        stamp(ack_at, "acknowledged by carol"),
        stamp(mitigated_at, "mitigation by carol: restarted the worker"),
        stamp(changed_at, "commander is now bob (was carol)"),
        stamp(resolved_at, "resolved"),
    ]
    assert postmortem.action_items == [] and postmortem.reminders_sent == 0
    assert postmortem.summary == "" and postmortem.root_cause == ""


def test_postmortem_policy_comes_from_the_configuration(open_incident, make_org, raw_config):
    policy = dict(raw_config["postmortem"], required_severities=["SEV1"], due_after="2d")
    org = make_org(postmortem=policy)
    sev2 = open_incident(severity=Severity.SEV2, organisation=org)
    sev2.run(Resolve())
    assert sev2.state.postmortem is None
    sev1 = open_incident(severity=Severity.SEV1, organisation=org)
    sev1.run(Resolve())
    assert sev1.state.postmortem.due_at == sev1.now + timedelta(days=2)


def test_a_second_resolution_does_not_create_a_second_postmortem(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    first = line.state.postmortem
    line.run(Reopen(reason="again"))
    line.advance(hours=1)
    assert changes(line.run(Resolve())) == ["resolved"]
    assert line.state.postmortem.created_at == first.created_at


def test_editing_creates_an_optional_draft_for_a_sev3(open_incident):
    line = open_incident()
    events = line.run(EditPostmortem(summary="we learned things"), actor="carol")
    assert changes(events) == ["postmortem_created", "postmortem_edited"]
    postmortem = line.state.postmortem
    assert postmortem.required is False
    assert postmortem.summary == "we learned things"
    assert postmortem.owner == "carol"
    # The incident is still open: its draft timeline must not claim a resolution.
    assert postmortem.timeline == [stamp(line.state.opened_at, "opened SEV3 on connector:ERP: ERP sync backlog")]


def test_draft_created_after_resolution_has_one_resolved_line(open_incident):
    line = open_incident()
    line.run(Resolve(), actor="carol")
    line.advance(hours=3)
    line.run(AddActionItem(title="add a lag alert", owner="carol"))
    timeline = line.state.postmortem.timeline
    assert [entry.split("Z ", 1)[1] for entry in timeline] == [
        "opened SEV3 on connector:ERP: ERP sync backlog",
        "resolved by carol",
    ]


def test_edit_postmortem_fields(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    events = line.run(
        EditPostmortem(
            summary="s", impact="i", root_cause="r", contributing_factors="c", what_went_well="w",
            timeline=["a", "b"], owner="dave",
        )
    )
    assert changes(events) == ["postmortem_edited"]
    assert events[0].fields == {
        "summary": "s", "impact": "i", "root_cause": "r", "contributing_factors": "c", "what_went_well": "w",
        "timeline": ["a", "b"], "owner": "dave",
    }
    postmortem = line.state.postmortem
    assert (postmortem.summary, postmortem.impact, postmortem.root_cause) == ("s", "i", "r")
    assert (postmortem.contributing_factors, postmortem.what_went_well) == ("c", "w")
    assert postmortem.timeline == ["a", "b"] and postmortem.owner == "dave"
    line.run(EditPostmortem(root_cause="r2"))
    assert line.state.postmortem.root_cause == "r2" and line.state.postmortem.summary == "s"


def test_edit_postmortem_without_fields_is_rejected(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    with pytest.raises(Rejected, match="nothing to change"):
        line.decide(EditPostmortem())


# --- action items --------------------------------------------------------------------


def test_action_items(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    at = line.advance(hours=1)
    events = line.run(
        AddActionItem(title="alert on lag", owner="bob", due_date=date(2026, 3, 20), priority="P2"), actor="carol"
    )
    item = events[0].item
    assert (item.item_id, item.title, item.owner, item.priority, item.status) == ("AI-1", "alert on lag", "bob", "P2", "open")
    assert item.due_date == date(2026, 3, 20)
    assert item.created_at == at and item.created_by == "carol"
    assert item.reopen_generation == 0
    line.run(AddActionItem(title="document failover", owner="carol"))
    assert [i.item_id for i in line.state.postmortem.action_items] == ["AI-1", "AI-2"]

    events = line.run(UpdateActionItem(item_id="AI-1", status="done", owner="dave"))
    assert changes(events) == ["action_item_updated"]
    first, second = line.state.postmortem.action_items
    assert (first.status, first.owner, first.title) == ("done", "dave", "alert on lag")
    assert (second.status, second.owner) == ("open", "carol")


def test_update_of_an_unknown_action_item_is_not_found(open_incident):
    line = open_incident(severity=Severity.SEV2)
    with pytest.raises(NotFound, match="AI-1"):
        line.decide(UpdateActionItem(item_id="AI-1", status="done"))  # no postmortem at all
    line.run(Resolve())
    line.run(AddActionItem(title="t", owner="bob"))
    with pytest.raises(NotFound, match="AI-7"):
        line.decide(UpdateActionItem(item_id="AI-7", status="done"))


def test_update_of_an_action_item_without_fields_is_rejected(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    line.run(AddActionItem(title="t", owner="bob"))
    with pytest.raises(Rejected, match="nothing to change"):
        line.decide(UpdateActionItem(item_id="AI-1"))


# --- completion -------------------------------------------------------------------------


def complete_ready(line):
    line.run(EditPostmortem(summary="what happened", root_cause="a full disk"))
    line.run(AddActionItem(title="alert on disk usage", owner="frank"))


def test_completion(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    complete_ready(line)
    at = line.advance(days=1)
    events = line.run(CompletePostmortem(), actor="carol")
    assert changes(events) == ["postmortem_completed"]
    assert line.state.postmortem.status == "completed"
    assert line.state.postmortem.completed_at == at
    with pytest.raises(Rejected, match="already completed"):
        line.decide(CompletePostmortem())


def test_completion_of_a_closed_incident(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    line.run(Close(verification="ok"))
    complete_ready(line)
    assert changes(line.run(CompletePostmortem())) == ["postmortem_completed"]


def test_completion_without_a_postmortem_is_rejected(open_incident):
    line = open_incident()
    line.run(Resolve())
    with pytest.raises(Rejected, match="no postmortem"):
        line.decide(CompletePostmortem())


def test_completion_needs_the_required_sections(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    line.run(AddActionItem(title="t", owner="bob"))
    # impact is prefilled from the incident; summary and root cause are not.
    with pytest.raises(Rejected, match="sections before it can be completed: summary, root_cause$"):
        line.decide(CompletePostmortem())
    line.run(EditPostmortem(summary="s", root_cause="   ", impact=""))
    with pytest.raises(Rejected, match="impact, root_cause$"):
        line.decide(CompletePostmortem())
    line.run(EditPostmortem(root_cause="r", impact="i"))
    assert line.run(CompletePostmortem())


def test_required_sections_come_from_the_configuration(open_incident, make_org, raw_config):
    policy = dict(raw_config["postmortem"], required_sections=["summary", "contributing_factors"])
    line = open_incident(severity=Severity.SEV1, organisation=make_org(postmortem=policy))
    line.run(Resolve())
    line.run(AddActionItem(title="t", owner="bob"))
    line.run(EditPostmortem(summary="s"))
    with pytest.raises(Rejected, match="contributing_factors"):
        line.decide(CompletePostmortem())
    line.run(EditPostmortem(contributing_factors="c"))
    assert line.run(CompletePostmortem())  # root_cause is not required here


def test_completion_needs_an_action_item(open_incident):
    line = open_incident(severity=Severity.SEV1)
    line.run(Resolve())
    line.run(EditPostmortem(summary="s", root_cause="r"))
    with pytest.raises(Rejected, match="at least one action item"):
        line.decide(CompletePostmortem())


def test_completion_needs_a_resolved_incident(open_incident):
    line = open_incident(severity=Severity.SEV1)
    complete_ready(line)  # a draft on an open incident
    with pytest.raises(Rejected, match="resolve the incident"):
        line.decide(CompletePostmortem())
    line.run(Resolve())
    line.run(Reopen(reason="again"))
    with pytest.raises(Rejected, match="resolve the incident"):
        line.decide(CompletePostmortem())


# --- close after a reopen --------------------------------------------------------------------


def test_close_after_reopen_needs_a_new_corrective_action(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    line.run(AddActionItem(title="first fix", owner="bob"))
    line.run(Close(verification="ok"))
    assert line.state.requires_additional_actions is False

    line.run(Reopen(reason="it came back"))
    line.advance(hours=1)
    line.run(Resolve())
    with pytest.raises(Rejected, match="reopened"):
        line.decide(Close(verification="ok"))
    # Editing the old item does not count as a new corrective action.
    line.run(UpdateActionItem(item_id="AI-1", status="done"))
    with pytest.raises(Rejected, match="reopened"):
        line.decide(Close(verification="ok"))

    events = line.run(AddActionItem(title="the real fix", owner="bob"))
    assert events[0].item.reopen_generation == 1
    assert changes(line.run(Close(verification="verified twice"))) == ["closed"]
    assert line.state.status is IncidentStatus.CLOSED
    assert line.state.requires_additional_actions is False


def test_every_reopen_needs_its_own_corrective_action(open_incident):
    line = open_incident(severity=Severity.SEV2)
    line.run(Resolve())
    for generation in (1, 2, 3):
        line.run(Reopen(reason=f"recurrence {generation}"))
        line.run(Resolve())
        with pytest.raises(Rejected, match="reopened"):
            line.decide(Close(verification="ok"))  # earlier generations' items do not count
        line.run(AddActionItem(title=f"fix {generation}", owner="bob"))
        assert line.state.postmortem.action_items[-1].reopen_generation == generation
        line.run(Close(verification="ok"))
        assert line.state.status is IncidentStatus.CLOSED
    assert line.state.reopen_count == 3
    assert len(line.state.postmortem.action_items) == 3


def test_a_reopened_sev3_gets_a_required_postmortem_for_its_action(open_incident):
    line = open_incident()
    line.run(Resolve())
    line.run(Close(verification="ok"))
    line.run(Reopen(reason="back"))
    line.run(Resolve())
    assert line.state.postmortem is None
    with pytest.raises(Rejected, match="corrective action"):
        line.decide(Close(verification="ok"))
    events = line.run(AddActionItem(title="fix it properly", owner="alice"))
    assert changes(events) == ["postmortem_created", "action_item_added"]
    assert line.state.postmortem.required is True  # a reopened incident needs its postmortem
    assert changes(line.run(Close(verification="ok"))) == ["closed"]


def test_recurrence_blocks_close_until_a_new_action(open_incident, make_alert, org):
    """The mission's scenario: a closed incident recurs, is reopened, needs more actions."""
    line = open_incident(severity=Severity.SEV2)
    line.run(AddMitigation(description="cleared the queue"))
    line.advance(minutes=30)
    line.run(Resolve())
    line.run(EditPostmortem(summary="s", root_cause="r"))
    line.run(AddActionItem(title="raise the queue limit", owner="bob"))
    line.run(CompletePostmortem())
    line.run(Close(verification="quiet for a day"))

    line.advance(hours=20)
    alert = make_alert(received_at=line.now)
    events = line.attach(alert)
    assert changes(events) == ["reopened", "alerts_attached"]
    assert line.state.status is IncidentStatus.TRIGGERED
    line.run(Resolve())
    with pytest.raises(Rejected, match="additional corrective action"):
        line.decide(Close(verification="ok"))
    line.run(AddActionItem(title="fix the producer", owner="carol"))
    line.run(Close(verification="ok"))
    assert line.state.status is IncidentStatus.CLOSED
    assert line.state.reopen_count == 1


def test_resolved_within_target_mttr_and_postmortem_created(open_incident):
    """The mission's scenario: mitigation applied, resolved within the SEV target."""
    line = open_incident(severity=Severity.SEV2)
    line.advance(minutes=10)
    line.run(AddMitigation(description="rolled back"))
    line.advance(minutes=32)
    line.run(Resolve())
    assert line.state.mttr_minutes == 42.0
    assert line.state.mttr_minutes <= line.state.mttr_target_minutes == 240
    assert line.state.postmortem is not None
