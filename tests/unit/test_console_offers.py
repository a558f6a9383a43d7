"""The console offers exactly the commands the lifecycle accepts now and the role may send."""
from __future__ import annotations

from shared.domain import commands as c
from services.web.offers import offers_for
from services.web.sessions import SessionStore

RESPONDER = ["read", "declare", "respond", "update", "postmortem", "export"]


def _session(permissions):
    return SessionStore(60).create("secret", "alice", "platform-admin", permissions)


def _view(line) -> dict:
    """The incident as the API shows it: the record without milestones, alerts as a list."""
    record = line.state.model_dump(mode="json")
    record.pop("milestones")
    record["alerts"] = list(line.refs.values())
    return record


def test_each_status_offers_what_the_lifecycle_allows(open_incident, org):
    line = open_incident()
    admin = _session(RESPONDER)
    triggered = offers_for(_view(line), admin, org)
    assert {"acknowledge", "add_mitigation", "resolve", "post_update"} <= triggered.allowed
    assert not {"close", "reopen", "complete_postmortem"} & triggered.allowed
    assert "cannot close an incident that is triggered" in triggered.reasons["close"]

    line.run(c.Acknowledge())
    assert "acknowledge" not in offers_for(_view(line), admin, org).allowed
    line.run(c.Resolve())
    resolved = offers_for(_view(line), admin, org)
    assert {"close", "reopen", "post_update"} <= resolved.allowed
    assert not {"acknowledge", "resolve", "add_mitigation"} & resolved.allowed
    line.run(c.Close(verification="ok"))
    closed = offers_for(_view(line), admin, org)
    assert closed.allowed == {"reopen", "edit_postmortem", "add_action_item"}


def test_a_reopened_incident_is_not_offered_close_until_a_new_action_item(open_incident, org):
    line = open_incident()
    admin = _session(RESPONDER)
    for command in (c.Resolve(), c.Reopen(reason="again"), c.Resolve()):
        line.run(command)
    offers = offers_for(_view(line), admin, org)
    assert "close" not in offers.allowed
    assert "additional corrective action" in offers.reasons["close"]
    line.run(c.AddActionItem(title="guard", owner="bob"))
    assert "close" in offers_for(_view(line), admin, org).allowed


def test_a_role_is_offered_only_what_it_may_do(open_incident, org):
    line = open_incident()
    engineer = _session(["read", "update", "postmortem"])
    offers = offers_for(_view(line), engineer, org)
    assert offers.allowed == {"post_update", "add_evidence", "edit_postmortem", "add_action_item"}
    assert not offers.may_export
    assert offers_for(_view(line), _session(["read", "export"]), org).allowed == set()


def test_a_record_the_console_cannot_read_offers_nothing(org):
    assert offers_for({"incident_id": "INC-1"}, _session(RESPONDER), org).allowed == set()
