"""Escalation policies as data: which plan applies, who a level pages, what a deadline does."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.escalation import Exhausted, Page, on_deadline, plan_for, resolve_target, start, stop
from shared.domain.organisation import Target


@pytest.fixture
def org_with_policies(make_org, raw_config):
    raw = raw_config
    policies = dict(raw["escalation_policies"])
    policies["checkout"] = {"repeat": 0, "levels": [{"timeout": "2m", "targets": [{"type": "person", "person": "dave"}]}]}
    policies["platform"] = {"repeat": 2, "levels": [{"timeout": "1m", "targets": [{"type": "team_channel"}]}]}
    services = dict(raw["services"])
    services["checkout-api"] = dict(services["checkout-api"], escalation_policy="checkout")
    teams = dict(raw["teams"])
    teams["platform"] = dict(teams["platform"], escalation_policy="platform")
    return make_org(escalation_policies=policies, services=services, teams=teams)


# --- plan_for ----------------------------------------------------------------------------


def test_plan_from_the_team(org):
    plan = plan_for(org, "integrations", "connector:CRM")
    assert plan.policy == "standard"
    assert plan.repeat == 1
    assert plan.rotation == "integrations-oncall"
    assert [level.timeout_seconds for level in plan.levels] == [300.0, 600.0, 900.0]
    assert [[t.type for t in level.targets] for level in plan.levels] == [["rotation"], ["rotation"], ["team_channel"]]
    assert [level.targets[0].position for level in plan.levels[:2]] == ["primary", "secondary"]


def test_plan_precedence_service_then_team_then_default(org_with_policies, make_org, raw_config):
    org = org_with_policies
    assert plan_for(org, "payments", "checkout-api").policy == "checkout"  # the service's own
    assert plan_for(org, "payments", "billing-worker").policy == "standard"  # the team's
    assert plan_for(org, "platform", "kubernetes").policy == "platform"  # the team's
    assert plan_for(org, "platform", "checkout-api").policy == "checkout"  # service beats team
    assert plan_for(org, "incident-managers", "mystery").policy == "standard"  # the default
    assert plan_for(org, "incident-managers", "mystery").rotation is None
    assert plan_for(org, "security", "checkout-api").policy == "checkout"


def test_default_policy_is_used_and_can_be_absent(make_org, raw_config):
    teams = {name: {k: v for k, v in team.items() if k != "escalation_policy"} for name, team in raw_config["teams"].items()}
    org = make_org(teams=teams, default_escalation_policy="security")
    assert plan_for(org, "payments", "billing-worker").policy == "security"
    assert plan_for(org, "payments", "billing-worker").rotation == "payments-oncall"
    org = make_org(teams=teams, default_escalation_policy=None)
    assert plan_for(org, "payments", "billing-worker") is None


# --- start / on_deadline / stop ----------------------------------------------------------


def test_start_pages_the_first_level(org, now):
    plan = plan_for(org, "integrations", "connector:CRM")
    state, page = start("INC-1", "integrations", plan, generation=2, now=now)
    assert page == Page(round=0, level=0, timeout=timedelta(minutes=5))
    assert state.deadline == now + timedelta(minutes=5)
    assert (state.round, state.level, state.status, state.generation) == (0, 0, "active", 2)
    assert state.incident_id == "INC-1" and state.team == "integrations"


def test_nothing_happens_before_the_deadline(org, now):
    state, _ = start("INC-1", "integrations", plan_for(org, "integrations", "connector:CRM"), 0, now)
    same, outcome = on_deadline(state, now + timedelta(minutes=5) - timedelta(microseconds=1))
    assert outcome is None
    assert same == state


def test_walks_every_level_and_every_repeat_then_gives_up(org, now):
    plan = plan_for(org, "integrations", "connector:CRM")  # 5m, 10m, 15m; repeat 1
    state, page = start("INC-1", "integrations", plan, 0, now)
    clock = now
    pages = [(page.round, page.level, page.timeout)]
    while True:
        clock = state.deadline
        state, outcome = on_deadline(state, clock)
        if isinstance(outcome, Exhausted):
            break
        assert isinstance(outcome, Page)
        assert state.deadline == clock + outcome.timeout
        assert (state.round, state.level) == (outcome.round, outcome.level)
        pages.append((outcome.round, outcome.level, outcome.timeout))
    minutes = timedelta(minutes=1)
    assert pages == [
        (0, 0, 5 * minutes), (0, 1, 10 * minutes), (0, 2, 15 * minutes),
        (1, 0, 5 * minutes), (1, 1, 10 * minutes), (1, 2, 15 * minutes),
    ]
    assert outcome == Exhausted(round=1)
    assert state.status == "failed"
    assert clock == now + 2 * 30 * minutes
    # A failed escalation stays failed and quiet.
    assert on_deadline(state, clock + timedelta(hours=1)) == (state, None)


def test_no_repeat_gives_up_after_the_last_level(org, now):
    plan = plan_for(org, "security", "kubernetes")  # security: 5m, 5m; repeat 0
    state, _ = start("INC-2", "security", plan, 0, now)
    state, outcome = on_deadline(state, now + timedelta(minutes=5))
    assert outcome == Page(round=0, level=1, timeout=timedelta(minutes=5))
    state, outcome = on_deadline(state, now + timedelta(minutes=10))
    assert outcome == Exhausted(round=0)
    assert state.status == "failed"


def test_a_late_check_gives_the_next_level_its_whole_timeout(org, now):
    state, _ = start("INC-1", "integrations", plan_for(org, "integrations", "connector:CRM"), 0, now)
    late = now + timedelta(hours=2)
    state, outcome = on_deadline(state, late)
    assert outcome == Page(round=0, level=1, timeout=timedelta(minutes=10))
    assert state.deadline == late + timedelta(minutes=10)


def test_stop(org, now):
    state, _ = start("INC-1", "integrations", plan_for(org, "integrations", "connector:CRM"), 0, now)
    stopped = stop(state)
    assert stopped.status == "stopped"
    assert on_deadline(stopped, now + timedelta(days=1)) == (stopped, None)
    assert stop(stopped) == stopped


def test_stop_does_not_undo_a_failure(org, now):
    plan = plan_for(org, "security", "kubernetes")
    state, _ = start("INC-2", "security", plan, 0, now)
    state, _ = on_deadline(state, now + timedelta(minutes=5))
    failed, _ = on_deadline(state, now + timedelta(minutes=10))
    assert stop(failed).status == "failed"


def test_the_escalation_state_round_trips_as_json(org, now):
    from shared.domain.escalation import Escalation

    state, _ = start("INC-1", "integrations", plan_for(org, "integrations", "connector:CRM"), 1, now)
    assert Escalation.model_validate_json(state.model_dump_json()) == state


# --- resolve_target -------------------------------------------------------------------------


def test_resolve_rotation_targets(org, now):
    rotation = "integrations-oncall"  # at NOW: carol primary, alice secondary
    assert resolve_target(Target(type="rotation"), org, "integrations", rotation, now) == "person:carol"
    assert resolve_target(Target(type="rotation", position="secondary"), org, "integrations", rotation, now) == "person:alice"
    later = now + timedelta(days=7)
    assert resolve_target(Target(type="rotation"), org, "integrations", rotation, later) == "person:alice"


def test_resolve_a_named_rotation(org, now):
    target = Target(type="rotation", rotation="platform-oncall")
    # Monday 2026-03-02 12:00 UTC: day 56 of platform-oncall -> frank.
    assert resolve_target(target, org, "integrations", "integrations-oncall", now) == "person:frank"
    assert resolve_target(target, org, "integrations", None, now) == "person:frank"


def test_resolve_rotation_without_a_rotation_pages_the_team(org, now):
    assert resolve_target(Target(type="rotation"), org, "incident-managers", None, now) == "team:incident-managers"
    assert resolve_target(Target(type="rotation"), org, "payments", "gone-rotation", now) == "team:payments"


def test_resolve_person_and_team_channel(org, now):
    assert resolve_target(Target(type="person", person="heidi"), org, "integrations", None, now) == "person:heidi"
    assert resolve_target(Target(type="team_channel"), org, "integrations", None, now) == "team:integrations"
    assert resolve_target(Target(type="team_channel", team="compliance"), org, "integrations", None, now) == "team:compliance"


def test_a_person_target_must_name_the_person():
    with pytest.raises(ValueError, match="names the person"):
        Target(type="person")
