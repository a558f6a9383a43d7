"""The escalation service's logic (on_audit / on_check) driven against the real lifecycle.

A small loop stands in for Kafka: audit events go to ``on_audit``, the commands it
returns are applied with ``decide``/``evolve`` the way triage does, and their audit
events come back. The example organisation: connector:ERP is owned by integrations
(``standard`` policy: 5m, 10m, 15m, repeat 1); an ERP error alert is SEV3 (update
cadence 4h, MTTR target 1d).
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from services.escalation.handlers import Deadlines, cadence_for, on_audit, on_check
from shared.audit import audit_event
from shared.domain import commands as c
from shared.domain.events import evolve
from shared.domain.lifecycle import Context, Rejected, decide
from shared.domain.organisation import Organisation, Severity
from shared.messages import Origin

INCIDENT = "INC-2026-03-02-001"


class Loop:
    """One incident, its escalation record, and the commands that went back and forth."""

    def __init__(self, org: Organisation, now: datetime) -> None:
        self.org, self.now = org, now
        self.state = None
        self.record = Deadlines()
        self.offsets = itertools.count()
        self.sent: list = []  # every command the escalation service asked for
        self.audits: list = []  # every audit event triage published
        self.rejected: list[str] = []

    def at(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now

    def run(self, command, actor: str = "alice") -> list:
        """Apply a command as triage does and feed its audit events to on_audit."""
        try:
            events = decide(self.state, command, Context(now=self.now, org=self.org, actor=actor))
        except Rejected as exc:
            self.rejected.append(str(exc))
            return []
        audits = []
        for event in events:
            self.state = evolve(self.state, event)
            audits.append(audit_event(event, self.state, None))
        self.audits.extend(audits)
        for audit in audits:
            self.feed(audit)
        return audits

    def feed(self, audit) -> None:
        origin = Origin(topic="incident.audit", partition=0, offset=next(self.offsets))
        self.record, envelopes = on_audit(self.record, audit, self.org, origin, self.now)
        self._apply(envelopes)

    def check(self) -> list:
        """A deadline check at ``now``; returns the commands it produced."""
        origin = Origin(topic="escalation.deadline-checks", partition=0, offset=next(self.offsets))
        self.record, envelopes = on_check(self.record, INCIDENT, self.org, origin, self.now)
        self._apply(envelopes)
        return [e.command for e in envelopes]

    def _apply(self, envelopes) -> None:
        for envelope in envelopes:
            assert envelope.incident_id == INCIDENT and envelope.actor == "escalation"
            self.sent.append(envelope.command)
            self.run(envelope.command, actor="escalation")

    def changes(self) -> list[str]:
        return [audit.change for audit in self.audits]

    def pages(self) -> list[tuple[int, int, list[str]]]:
        return [(cmd.round, cmd.level, cmd.targets) for cmd in self.sent if isinstance(cmd, c.RecordEscalation)]


@pytest.fixture
def loop(org, now, make_alert):
    def make(organisation: Organisation | None = None, **alert) -> Loop:
        the_org = organisation or org
        line = Loop(the_org, now)
        first = make_alert(**alert)
        line.run(c.OpenIncident(incident_id=INCIDENT, correlation_key="ck", alert=first, fingerprint="fp"),
                 actor="monitoring:alertmanager")
        return line

    return make


# --- escalation --------------------------------------------------------------------------


def test_opening_pages_the_first_level_at_once_and_sets_every_deadline(loop, now):
    line = loop()
    # At NOW integrations-oncall has carol as primary, alice as secondary.
    assert line.pages() == [(0, 0, ["person:carol"])]
    assert line.changes() == ["opened", "escalated"]
    record = line.record
    assert record.escalation.deadline == now + timedelta(minutes=5)
    assert record.update_due == now + timedelta(hours=4)
    assert record.mttr_due == now + timedelta(days=1)  # detected (received) now, SEV3 target 1d
    assert record.next_due == now + timedelta(minutes=5)
    stored = record.model_dump(mode="json")
    assert datetime.fromisoformat(stored["next_due"]) == record.next_due  # the timer reads it from the table
    assert Deadlines.model_validate(stored) == record
    assert record.last_version == line.state.version


def test_nothing_is_paged_before_the_deadline(loop):
    line = loop()
    line.at(minutes=5, microseconds=-1)
    assert line.check() == []
    assert line.pages() == [(0, 0, ["person:carol"])]


def test_unacknowledged_walks_every_level_and_repeat_then_fails_once(loop, now):
    line = loop()
    moments = []
    while not line.state.escalation_failed:
        line.now = line.record.next_due
        assert line.check()
        moments.append(line.now - now)
    minutes = timedelta(minutes=1)
    assert line.pages() == [
        (0, 0, ["person:carol"]), (0, 1, ["person:alice"]), (0, 2, ["team:integrations"]),
        (1, 0, ["person:carol"]), (1, 1, ["person:alice"]), (1, 2, ["team:integrations"]),
    ]
    # Each level waits its own timeout, counted from when it was paged.
    assert moments == [5 * minutes, 15 * minutes, 30 * minutes, 35 * minutes, 45 * minutes, 60 * minutes]
    failed = [cmd for cmd in line.sent if isinstance(cmd, c.MarkEscalationFailed)]
    assert failed == [c.MarkEscalationFailed(round=1, fallback_team="incident-managers")]
    assert line.changes()[-1] == "escalation_failed"
    assert line.record.escalation.status == "failed"
    # After the failure nothing more is paged, however long it stays unanswered.
    line.at(hours=3)
    assert [cmd for cmd in line.check() if not isinstance(cmd, c.SendReminder)] == []


@pytest.mark.parametrize("stop", ["acknowledge", "mitigate", "resolve"])
def test_acknowledge_mitigation_and_resolve_stop_the_escalation(loop, stop):
    line = loop()
    line.at(minutes=5)
    line.check()  # the second level
    command = {"acknowledge": c.Acknowledge(), "mitigate": c.AddMitigation(description="restarted"),
               "resolve": c.Resolve()}[stop]
    line.at(minutes=1)
    line.run(command)
    assert line.record.escalation.status == "stopped"
    line.at(hours=2)
    line.check()
    assert [level for _, level, _ in line.pages()] == [0, 1]
    assert not line.state.escalation_failed


def test_reopen_restarts_the_frozen_policy_from_the_first_level(loop):
    line = loop()
    line.run(c.Resolve())
    line.at(minutes=30)
    line.run(c.Reopen(reason="it came back"))
    assert line.record.escalation.status == "active"
    assert line.record.escalation.generation == 1
    assert line.pages() == [(0, 0, ["person:carol"]), (0, 0, ["person:carol"])]
    assert line.changes()[-2:] == ["reopened", "escalated"]


def test_the_policy_is_frozen_when_the_incident_opens(loop, org, make_org, raw_config):
    line = loop()
    # The configuration changes (all levels 1h now): the running escalation keeps its plan.
    policies = {"standard": {"repeat": 0, "levels": [{"timeout": "1h", "targets": [{"type": "team_channel"}]}]},
                "security": raw_config["escalation_policies"]["security"]}
    line.org = make_org(escalation_policies=policies)
    line.at(minutes=5)
    line.check()
    assert line.pages()[-1] == (0, 1, ["person:alice"])
    assert line.record.escalation.deadline == line.now + timedelta(minutes=10)


def test_a_check_racing_an_acknowledgement_is_refused_by_the_lifecycle(loop):
    line = loop()
    line.at(minutes=5)
    stale = line.record  # the check was decided before the acknowledgement arrived
    line.run(c.Acknowledge())
    line.record = stale
    line.check()
    assert line.changes().count("escalated") == 1
    assert line.rejected == ["no escalation while the incident is acknowledged"]


def test_redelivered_audit_events_and_checks_change_nothing(loop):
    line = loop()
    record = line.record
    for audit in line.audits:  # the opening and the first page, delivered again after a restart
        again, envelopes = on_audit(record, audit, line.org, Origin(topic="incident.audit", partition=0, offset=0),
                                    line.now)
        assert (again, envelopes) == (record, [])
    origin = Origin(topic="escalation.deadline-checks", partition=1, offset=7)
    line.at(minutes=5)
    _, first = on_check(record, INCIDENT, line.org, origin, line.now)
    _, second = on_check(record, INCIDENT, line.org, origin, line.now)
    # The same check derives the same command ids and origins: triage applies it once.
    assert [e.command_id for e in first] == [e.command_id for e in second]
    assert [e.origin for e in first] == [e.origin for e in second] == [origin]


def test_an_incident_without_a_policy_is_not_paged(loop, make_org, raw_config):
    teams = {name: {k: v for k, v in team.items() if k != "escalation_policy"} for name, team in raw_config["teams"].items()}
    line = loop(organisation=make_org(teams=teams, default_escalation_policy=None))
    assert line.pages() == []
    assert line.record.escalation is None
    assert line.record.next_due == line.record.update_due


# --- status-update cadence -------------------------------------------------------------------


def test_reminders_repeat_every_cadence_until_an_update_restarts_the_clock(loop, now):
    line = loop()
    line.run(c.Acknowledge())
    line.at(hours=4)
    assert line.check() == [c.SendReminder(reminder="update_due", due_at=(now + timedelta(hours=4)).isoformat())]
    assert line.changes()[-1] == "update_due"
    assert line.record.update_due == line.now + timedelta(hours=4)
    line.at(hours=1)
    line.run(c.PostUpdate(message="found it"))
    assert line.record.update_due == line.now + timedelta(hours=4)
    line.at(hours=4, microseconds=-1)
    assert line.check() == []
    line.at(microseconds=1)
    assert [cmd.reminder for cmd in line.check()] == ["update_due"]


def test_cadence_follows_the_severity_and_stops_when_resolved(loop, now):
    line = loop()
    line.at(minutes=10)
    line.run(c.ChangeSeverity(severity=Severity.SEV1, reason="customers see it"))
    assert line.record.update_due == now + timedelta(minutes=30)  # SEV1: 30m from the opening
    line.run(c.ChangeSeverity(severity=Severity.SEV4, reason="only one customer"))
    assert line.record.update_due is None  # no cadence for SEV4
    line.run(c.ChangeSeverity(severity=Severity.SEV3, reason="back"))
    line.run(c.Resolve())
    assert line.record.update_due is None and line.record.mttr_due is None


def test_a_service_may_override_the_cadence(org, make_org, raw_config, now):
    services = dict(raw_config["services"])
    services["connector:ERP"] = dict(services["connector:ERP"], update_cadence={"SEV3": "15m"})
    tuned = make_org(services=services)
    assert cadence_for(tuned, _incident(tuned, now, "connector:ERP")) == timedelta(minutes=15)
    assert cadence_for(tuned, _incident(tuned, now, "connector:CRM")) == timedelta(hours=4)
    assert cadence_for(org, _incident(org, now, "connector:ERP")) == timedelta(hours=4)


def _incident(org, now, service):
    opened = decide(None, c.OpenIncident(incident_id=INCIDENT, correlation_key="ck", title="t", service=service,
                                         severity=Severity.SEV3), Context(now=now, org=org, actor="a"))[0]
    return opened.incident


def test_a_cadence_must_be_positive(build_org, raw_config):
    services = dict(raw_config["services"])
    services["connector:ERP"] = dict(services["connector:ERP"], update_cadence={"SEV3": "0s"})
    with pytest.raises(SystemExit, match="update cadence must be positive"):
        build_org({**raw_config, "services": services})


# --- MTTR target --------------------------------------------------------------------------------


def test_mttr_breach_is_reported_once_at_the_target(loop, now):
    line = loop()
    line.run(c.Acknowledge())
    line.now = now + timedelta(days=1)
    commands = line.check()
    assert c.SendReminder(reminder="mttr_target_breached", due_at=(now + timedelta(days=1)).isoformat()) in commands
    assert "mttr_target_breached" in line.changes()
    assert line.state.mttr_breached
    assert line.record.mttr_due is None and line.record.mttr_reported
    line.at(days=1)
    assert "mttr_target_breached" not in [getattr(cmd, "reminder", None) for cmd in line.check()]
    # Reopened later: the breach was reported already and is not reported again.
    line.run(c.Resolve())
    line.run(c.Reopen(reason="again"))
    assert line.record.mttr_due is None


def test_mttr_deadline_counts_from_detection_and_follows_a_severity_change(loop, now):
    line = loop(starts_at=now - timedelta(hours=3))
    assert line.record.mttr_due == now - timedelta(hours=3) + timedelta(days=1)
    line.run(c.ChangeSeverity(severity=Severity.SEV1, reason="worse"))  # SEV1 target 1h: already late
    assert line.record.mttr_due == now - timedelta(hours=2)
    commands = line.check()
    assert [cmd.reminder for cmd in commands if isinstance(cmd, c.SendReminder)] == ["mttr_target_breached"]
    assert line.state.mttr_breached


# --- postmortem reminders ---------------------------------------------------------------------


def test_overdue_postmortem_is_reminded_every_interval_until_completed(loop, now):
    line = loop(source_severity="critical", service="connector:CRM")  # tier 1 critical: SEV1
    line.run(c.Resolve())
    due = line.state.postmortem.due_at
    assert line.record.postmortem_due == due
    line.now = due
    assert [cmd.reminder for cmd in line.check()] == ["postmortem_overdue"]
    assert line.record.postmortem_due == due + timedelta(days=1)
    assert line.state.postmortem.reminders_sent == 1
    line.run(c.EditPostmortem(summary="s", impact="i", root_cause="r"))
    line.run(c.AddActionItem(title="fix", owner="alice"))
    line.run(c.CompletePostmortem())
    assert line.record.postmortem_due is None
    assert line.record.next_due is None
