"""A team's own postmortem due time (postmortem.due_after_by_team) overrides the organisation's."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.config_loader import ConfigError
from shared.domain.commands import AddActionItem, Reopen, Resolve
from shared.domain.organisation import Severity


def test_a_team_override_sets_the_due_date(open_incident, make_org, raw_config):
    policy = dict(raw_config["postmortem"], due_after="5d", due_after_by_team={"integrations": "36h"})
    org = make_org(postmortem=policy)
    line = open_incident(severity=Severity.SEV2, organisation=org)  # connector:ERP -> integrations
    line.run(Resolve())
    assert line.state.postmortem.due_at == line.now + timedelta(hours=36)
    assert org.postmortem.due_after_for("payments") == timedelta(days=5)


def test_the_override_also_applies_to_a_draft_made_for_a_reopened_incident(open_incident, make_org, raw_config):
    policy = dict(raw_config["postmortem"], due_after_by_team={"integrations": "2s"})
    line = open_incident(organisation=make_org(postmortem=policy))  # SEV3: no draft on resolve
    line.run(Resolve())
    line.run(Reopen(reason="back"))
    line.run(AddActionItem(title="t", owner="bob"))
    assert line.state.postmortem.required is True
    assert line.state.postmortem.due_at == line.now + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ghosts": "1d"}, "postmortem.due_after_by_team.ghosts: unknown team 'ghosts'"),
        ({"payments": "soon"}, "postmortem.due_after_by_team: Value error, payments: not a duration: 'soon'"),
    ],
)
def test_a_bad_override_names_the_field(make_org, raw_config, overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        make_org(postmortem=dict(raw_config["postmortem"], due_after_by_team=overrides))
