"""Maintenance windows: the pure rules (what a window covers, how long a hold lasts), and the two
services that act on them: escalation holds the page, notification holds the automatic messages."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.cli.client import CliError
from services.cli.maintenance_commands import matcher
from services.escalation.handlers import Deadlines, on_audit, on_check
from services.escalation.maintenance_hold import due
from services.notification.handlers import NotifiedRecord, handle_event
from shared.audit import audit_event
from shared.domain import commands as c
from shared.domain import maintenance as m
from shared.domain.alerts import AlertAction
from shared.domain.events import evolve
from shared.domain.lifecycle import Context, Rejected, decide
from shared.messages import Origin

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
INCIDENT = "INC-2026-03-02-001"
ERP = m.Subject("connector:ERP", {"alertname": "QueueBacklog", "instance": "erp-1", "env": "prod"})
ids = itertools.count(1)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def window(start: float = 0, end: float = 60, *, services=("connector:ERP",), matchers=(), created: float | None = None,
           deleted: float | None = None, reason: str = "ERP upgrade") -> m.MaintenanceWindow:
    return m.MaintenanceWindow(
        window_id=f"mw_{next(ids):012x}", services=list(services), matchers=list(matchers), start=minutes(start),
        end=minutes(end), reason=reason, who="alice", created_by="alice",
        created_at=minutes(created if created is not None else min(start, 0) - 1),
        deleted_by="bob" if deleted is not None else None, deleted_at=minutes(deleted) if deleted is not None else None,
    )


# --- what a window covers ----------------------------------------------------------------


@pytest.mark.parametrize("spec, labels, hit", [
    ({"name": "env", "value": "prod"}, {"env": "prod"}, True),
    ({"name": "env", "value": "prod"}, {"env": "staging"}, False),
    ({"name": "env", "value": "prod"}, {}, False),
    ({"name": "env", "value": "prod", "equal": False}, {"env": "staging"}, True),
    ({"name": "env", "value": "prod", "equal": False}, {"env": "prod"}, False),
    ({"name": "instance", "value": "erp-.*", "regex": True}, {"instance": "erp-12"}, True),
    ({"name": "instance", "value": "erp-.*", "regex": True}, {"instance": "xerp-1"}, False),  # a full match
    ({"name": "instance", "value": "erp-.*", "regex": True, "equal": False}, {"instance": "crm-1"}, True),
    ({"name": "missing", "value": ""}, {}, True),  # an absent label is the empty string, as in Alertmanager
])
def test_label_matchers(spec, labels, hit):
    assert m.LabelMatcher(**spec).matches(labels) is hit


def test_a_window_needs_something_to_match_an_order_and_a_valid_regex():
    with pytest.raises(ValidationError, match="services, label matchers"):
        window(services=())
    with pytest.raises(ValidationError, match="after start"):
        window(start=10, end=5)
    with pytest.raises(ValidationError, match="regular expression"):
        m.LabelMatcher(name="x", value="(", regex=True)


def test_every_condition_of_a_window_must_hold():
    both = window(matchers=[m.LabelMatcher(name="env", value="prod")])
    assert both.matches(ERP)
    assert not both.matches(m.Subject("connector:ERP", {"env": "staging"}))
    assert not both.matches(m.Subject("checkout-api", {"env": "prod"}))
    anywhere = window(services=(), matchers=[m.LabelMatcher(name="env", value="prod")])
    assert anywhere.matches(m.Subject("checkout-api", {"env": "prod"}))


def test_a_window_covers_from_its_start_until_just_before_its_end():
    w = window(0, 30)
    assert not w.covers(ERP, minutes(-0.01))
    assert w.covers(ERP, minutes(0)) and w.covers(ERP, minutes(29.99))
    assert not w.covers(ERP, minutes(30))


def test_a_window_never_reaches_back_before_it_was_created_and_ends_when_deleted():
    late = window(-60, 60, created=10)
    assert late.effective_start == minutes(10) and not late.covers(ERP, minutes(5))
    cut = window(0, 60, deleted=20)
    assert cut.effective_end == minutes(20) and not cut.covers(ERP, minutes(25))
    after_its_end = window(0, 30, deleted=45)
    assert after_its_end.effective_end == minutes(30)


def test_a_hold_follows_windows_back_to_back_and_stops_at_a_gap():
    first, second, later = window(0, 30), window(30, 50), window(55, 90)
    assert m.hold_end([first, second, later], ERP, minutes(5)) == minutes(50)
    overlapping = window(20, 70)
    assert m.hold_end([first, overlapping], ERP, minutes(5)) == minutes(70)
    assert m.hold_end([first], ERP, minutes(30)) is None, "not held at all outside every window"
    assert m.hold_end([first, window(0, 300, services=("checkout-api",))], ERP, minutes(5)) == minutes(30)
    assert m.covering([first, overlapping], ERP, minutes(25)) == overlapping, "the one lasting longest"


def test_held_is_true_only_inside_the_hold():
    windows = [window(0, 30)]
    assert m.held(windows, ERP, minutes(5), minutes(29))
    assert not m.held(windows, ERP, minutes(5), minutes(30))
    assert not m.held(windows, ERP, None, minutes(10))
    assert not m.held([], ERP, minutes(5), minutes(10))


@pytest.mark.parametrize("actor, automatic", [
    ("system", True), ("escalation", True), ("monitoring:alertmanager", True), ("integration:opsgenie", True),
    ("alice", False), ("test-platform-admin", False), ("triage", False),
])
def test_which_changes_are_automatic(actor, automatic):
    assert m.automatic(actor) is automatic


def test_only_alerts_are_held():
    assert m.holds_opening("opened", declared=False, recurrence=False)
    assert not m.holds_opening("opened", declared=True, recurrence=False)
    assert m.holds_opening("reopened", declared=False, recurrence=True)
    assert not m.holds_opening("reopened", declared=False, recurrence=False)
    assert not m.holds_opening("acknowledged", declared=False, recurrence=False)


# --- the incident's mark -----------------------------------------------------------------------


def test_the_incident_is_marked_once_per_window_and_never_once_closed(open_incident):
    line = open_incident()
    hold = c.HoldForMaintenance(window_id="mw_000000000001", reason="ERP upgrade", until=minutes(30))
    (event,) = line.run(hold, actor="escalation")
    assert event.change == "maintenance_held" and line.state.maintenance.window_id == "mw_000000000001"
    assert line.state.milestones[-1].summary.startswith("in maintenance window mw_000000000001 (ERP upgrade)")
    assert line.decide(hold, actor="escalation") == []
    longer = hold.model_copy(update={"until": minutes(60)})
    assert [e.change for e in line.decide(longer, actor="escalation")] == ["maintenance_held"]
    line.run(c.Resolve())
    line.run(c.Close(verification="fine"))
    assert line.decide(longer, actor="escalation") == []


# --- escalation holds the page ------------------------------------------------------------


class Held:
    """One incident between triage (decide/evolve) and the escalation logic, with maintenance windows."""

    def __init__(self, org, now, windows) -> None:
        self.org, self.now, self.windows = org, now, windows
        self.state, self.record, self.notified = None, Deadlines(), NotifiedRecord()
        self.offsets = itertools.count()
        self.commands: list = []
        self.log: list = []  # the notification service's communication records
        self.told: list = []  # notifications sent
        self.refs: dict = {}  # what triage keeps beside the incident, by fingerprint

    def run(self, command, actor: str = "alice") -> None:
        try:
            events = decide(self.state, command, Context(now=self.now, org=self.org, actor=actor))
        except Rejected:
            return
        for event in events:
            self.state = evolve(self.state, event)
            self.refs.update({ref.fingerprint: ref for ref in getattr(event, "refs", ())})
            audit = audit_event(event, self.state, None)
            planned = handle_event(self.notified, audit, self.org, self.now, self.windows)
            self.notified = planned.record
            self.log.extend(planned.log)
            self.told.extend(planned.notifications)
            origin = Origin(topic="incident.audit", partition=0, offset=next(self.offsets))
            self.record, envelopes = on_audit(self.record, audit, self.org, origin, self.now, self.windows)
            self._apply(envelopes)

    def check(self) -> None:
        origin = Origin(topic="escalation.deadline-checks", partition=0, offset=next(self.offsets))
        self.record, envelopes = on_check(self.record, INCIDENT, self.org, origin, self.now, self.windows)
        self._apply(envelopes)

    def _apply(self, envelopes) -> None:
        for envelope in envelopes:
            self.commands.append(envelope.command)
            self.run(envelope.command, actor="escalation")

    def pages(self) -> list:
        return [cmd.targets for cmd in self.commands if isinstance(cmd, c.RecordEscalation)]


@pytest.fixture
def held(org, make_alert):
    def make(windows, *, at: datetime = T0, **alert) -> Held:
        line = Held(org, at, windows)
        first = make_alert(received_at=at, labels={"alertname": "QueueBacklog", "instance": "erp-1", "env": "prod"},
                           **alert)
        line.run(c.OpenIncident(incident_id=INCIDENT, correlation_key="ck", alert=first, fingerprint="fp"),
                 actor="monitoring:alertmanager")
        return line

    return make


def test_an_incident_opened_in_a_window_is_marked_and_paged_only_when_the_window_ends(held):
    w = window(-5, 30)
    line = held([w])
    assert line.pages() == [] and line.state.maintenance.window_id == w.window_id
    assert line.record.held.until == minutes(30) and line.record.next_due == minutes(30)
    assert line.told == [], "nobody told of the opening"
    assert [r.status for r in line.log] == ["suppressed"] and w.window_id in line.log[0].text
    line.now = minutes(29)
    line.check()
    assert line.pages() == []
    line.now = minutes(30)
    line.check()
    assert line.pages() == [["person:carol"]], "still firing when the window ends: paged as usual"
    assert line.record.held is None and line.record.escalation.status == "active"
    assert [n.kind for n in line.told] == ["escalated"], "the page is told"


def test_an_incident_resolved_in_the_window_is_never_paged_nor_told(held, make_alert):
    line = held([window(-5, 30)])
    line.now = minutes(10)
    resolved = make_alert(action=AlertAction.RESOLVE, received_at=minutes(10))
    from conftest import fold_alerts

    # The opening alert's fingerprint ("fp") resolves: nothing fires any more.
    envelope = fold_alerts(line.state, line.refs, [resolved], line.org, iter(range(10)), "fp")
    line.run(envelope.command, actor="monitoring:alertmanager")
    assert line.state.status.value == "resolved"
    assert line.record.held is None
    line.now = minutes(30)
    line.check()
    assert line.pages() == [] and line.told == []
    assert {r.kind for r in line.log} == {"opened", "resolved"}, "both held back, both logged"


def test_a_person_acknowledging_in_the_window_is_told_and_nothing_is_paged_later(held):
    line = held([window(-5, 30)])
    line.now = minutes(3)
    line.run(c.Acknowledge(note="on it"), actor="alice")
    assert [n.kind for n in line.told] == ["acknowledged"], "people's own changes are told"
    line.now = minutes(31)
    line.check()
    assert line.pages() == []


def test_a_window_deleted_early_ends_the_hold_then(held):
    w = window(-5, 60)
    line = held([w])
    cut = w.model_copy(update={"deleted_at": minutes(10), "deleted_by": "bob", "version": 2})
    line.windows = [cut]
    stored = line.record.model_dump(mode="json")["held"]
    assert due(stored, {w.window_id: w}) == minutes(60)
    assert due(stored, {cut.window_id: cut}) == minutes(10), "the timer looks again when the window was cut"
    line.now = minutes(10)
    line.check()
    assert line.pages() == [["person:carol"]]


def test_a_window_created_later_back_to_back_extends_the_hold(held):
    first = window(-5, 30)
    line = held([first])
    line.windows = [first, window(30, 45, created=20)]
    line.now = minutes(30)
    line.check()
    assert line.pages() == [] and line.record.held.until == minutes(45)
    line.now = minutes(45)
    line.check()
    assert line.pages() == [["person:carol"]]


def test_other_services_and_declared_incidents_are_paged_at_once(held, org):
    line = held([window(-5, 30, services=("checkout-api",))])
    assert line.pages() == [["person:carol"]] and line.state.maintenance is None
    assert [n.kind for n in line.told] == ["opened", "escalated"]
    declared = Held(org, T0, [window(-5, 30)])
    declared.run(c.OpenIncident(incident_id=INCIDENT, correlation_key="d", title="ERP down", service="connector:ERP"))
    assert declared.pages() == [["person:carol"]]


def test_a_recurring_alert_in_a_window_reopens_without_paging(held, make_alert):
    line = held([])
    line.run(c.Resolve())
    w = window(5, 60, created=5)
    line.windows = [w]
    line.now = minutes(10)
    pages_before = len(line.pages())
    from conftest import fold_alerts

    envelope = fold_alerts(line.state, line.refs, [make_alert(received_at=minutes(10))], line.org, iter(range(10)),
                           "fp")
    line.run(envelope.command, actor="monitoring:alertmanager")
    assert line.state.status.value == "triggered" and line.state.reopen_count == 1
    assert len(line.pages()) == pages_before and line.state.maintenance.window_id == w.window_id
    assert line.told[-1].kind != "reopened"
    line.now = minutes(60)
    line.check()
    assert len(line.pages()) == pages_before + 1


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("text, spec", [
    ("env=prod", {"name": "env", "value": "prod", "regex": False, "equal": True}),
    ("env!=prod", {"name": "env", "value": "prod", "regex": False, "equal": False}),
    ("instance=~erp-.*", {"name": "instance", "value": "erp-.*", "regex": True, "equal": True}),
    ("instance!~erp-.*", {"name": "instance", "value": "erp-.*", "regex": True, "equal": False}),
    ("url=http://x?a=b", {"name": "url", "value": "http://x?a=b", "regex": False, "equal": True}),
])
def test_the_cli_reads_matchers_like_alertmanager(text, spec):
    assert matcher(text) == spec


@pytest.mark.parametrize("text", ["env", "=prod", "env~prod"])
def test_the_cli_refuses_what_is_not_a_matcher(text):
    with pytest.raises(CliError):
        matcher(text)
