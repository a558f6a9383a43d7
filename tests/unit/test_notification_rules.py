"""Who is told what (plan), the rendered text, and the back-off rule for repeated notifications."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain import commands as c
from shared.domain.lifecycle import Context, decide
from shared.domain.notifications import BACKED_OFF, NOTIFYING, back_off, plan, render
from shared.domain.organisation import NotificationPolicy

POLICY = NotificationPolicy(repeat_backoff=timedelta(minutes=1), repeat_backoff_max=timedelta(minutes=30))
MINUTE = timedelta(minutes=1)


@pytest.fixture
def incident(org, now, make_alert):
    opened = decide(None, c.OpenIncident(incident_id="INC-1", correlation_key="ck", alert=make_alert(
        service="connector:CRM", source_severity="critical"), fingerprint="fp"), Context(now=now, org=org, actor="m"))
    return opened[0].incident


# --- back_off ------------------------------------------------------------------------------


@pytest.mark.parametrize("change", sorted(set(NOTIFYING) - BACKED_OFF))
def test_one_off_changes_are_always_sent(change, now):
    assert back_off(change, now, MINUTE, now, POLICY) == (True, MINUTE)
    assert back_off(change, None, None, now, POLICY) == (True, None)


def test_the_first_repeatable_one_is_sent_and_arms_the_back_off(now):
    assert back_off("update_due", None, None, now, POLICY) == (True, MINUTE)


def test_a_repeat_inside_the_interval_is_held_back(now):
    assert back_off("update_due", now, MINUTE, now + MINUTE - timedelta(microseconds=1), POLICY) == (False, MINUTE)


def test_a_repeat_after_the_interval_is_sent_and_the_interval_doubles(now):
    assert back_off("postmortem_overdue", now, MINUTE, now + MINUTE, POLICY) == (True, 2 * MINUTE)
    assert back_off("postmortem_overdue", now, 8 * MINUTE, now + 8 * MINUTE, POLICY) == (True, 16 * MINUTE)


def test_the_interval_stops_growing_at_the_maximum(now):
    assert back_off("update_due", now, 16 * MINUTE, now + 16 * MINUTE, POLICY) == (True, 30 * MINUTE)
    assert back_off("update_due", now, 30 * MINUTE, now + 30 * MINUTE, POLICY) == (True, 30 * MINUTE)


# --- plan and render --------------------------------------------------------------------------


def test_changes_that_do_not_notify(incident, org):
    for change in ("alert_attached", "alert_resolved", "evidence_added", "postmortem_edited", "action_item_added"):
        assert plan(change, incident, {}, "s", org) == []


def test_reminders_target_the_commander_and_the_postmortem_owner(incident, org):
    [due] = plan("update_due", incident, {}, "status update overdue", org)
    assert (due.team, due.kind, due.targets) == ("integrations", "reminder", ("person:carol",))
    assert "Status update overdue" in due.text and "incidentctl update" in due.text
    [breach] = plan("mttr_target_breached", incident, {"target_minutes": 60}, "s", org)
    assert breach.targets == ("person:carol",) and "MTTR target (60 min) breached" in breach.text


def test_escalation_failed_falls_back_to_the_configured_team(incident, org):
    outgoing = plan("escalation_failed", incident, {"fallback_team": "incident-managers"}, "s", org)
    assert [o.team for o in outgoing] == ["integrations", "incident-managers"]
    # The data names the fallback; without it the configuration's is used.
    assert [o.team for o in plan("escalation_failed", incident, {}, "s", org)] == ["integrations", "incident-managers"]


def test_texts_carry_the_runbook_and_the_headline(incident):
    text = render("opened", incident, {}, "")
    assert text.startswith("Incident opened [SEV1] INC-1 connector:CRM")
    assert "Runbook: https://runbooks.example.com/connectors/crm" in text
    paged = render("escalated", incident, {"targets": ["person:alice", "team:integrations"], "level": 1}, "")
    assert "Paging person:alice, team:integrations" in paged and "escalation level 2" in paged
    assert render("acknowledged", incident, {}, "acknowledged by bob").endswith(": acknowledged by bob.")
