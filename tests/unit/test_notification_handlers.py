"""The notification service's logic: audit event in, notifications, webhook posts and log records out."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.notification.handlers import (
    NotifiedRecord,
    after_attempt,
    after_failure,
    handle_event,
    response_error,
    slack_payload,
    webhook_record,
)
from shared.audit import audit_event
from shared.domain import commands as c
from shared.domain.events import evolve
from shared.domain.lifecycle import Context, decide
from shared.domain.organisation import Organisation
from shared.messages import Notification, WebhookDelivery

INCIDENT = "INC-2026-03-02-001"


class Stream:
    """One incident's audit events, handled in order by handle_event with its record."""

    def __init__(self, org: Organisation, now: datetime) -> None:
        self.org, self.now = org, now
        self.state = None
        self.record = NotifiedRecord()
        self.planned: list = []
        self.audits: list = []

    def run(self, command, actor: str = "alice"):
        """Apply a command like triage; hand each audit event to the notification logic."""
        out = []
        for event in decide(self.state, command, Context(now=self.now, org=self.org, actor=actor)):
            self.state = evolve(self.state, event)
            audit = audit_event(event, self.state, None)
            self.audits.append(audit)
            planned = handle_event(self.record, audit, self.org, self.now)
            self.record = planned.record
            out.append(planned)
        self.planned.extend(out)
        return out[-1] if len(out) == 1 else out

    def attach(self, *alerts):
        from conftest import fold_alerts

        envelope = fold_alerts(self.state, {}, alerts, self.org, iter(range(10**6)))
        return self.run(envelope.command, actor=envelope.actor)

    def at(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


@pytest.fixture
def stream(org, now, make_alert):
    def make(organisation: Organisation | None = None, **alert) -> Stream:
        line = Stream(organisation or org, now)
        line.run(c.OpenIncident(incident_id=INCIDENT, correlation_key="ck", alert=make_alert(**alert), fingerprint="fp"),
                 actor="monitoring:alertmanager")
        return line

    return make


def reminder() -> c.SendReminder:
    return c.SendReminder(reminder="update_due", due_at="x")


def teams(planned) -> list[str]:
    return [n.team for n in planned.notifications]


def test_opened_tells_the_owning_team_with_structured_fields_and_logs_it(stream, now):
    line = stream(service="connector:CRM", source_severity="critical")  # SEV1, CRM playbook
    planned = line.planned[0]
    assert teams(planned) == ["integrations"]
    note = planned.notifications[0]
    assert note.kind == "opened" and note.incident_id == INCIDENT
    assert (note.severity, note.service, note.status, note.commander) == ("SEV1", "connector:CRM", "triggered", "carol")
    assert note.runbook_url == "https://runbooks.example.com/connectors/crm"
    assert note.incident_url == f"http://127.0.0.1:8080/v1/incidents/{INCIDENT}"
    assert note.notification_id == f"{INCIDENT}/v1:integrations" and note.event_id == f"{INCIDENT}/v1"
    assert "Incident opened [SEV1]" in note.text and "Commander: carol" in note.text
    assert [(r.record_id, r.status, r.channel) for r in planned.log] == [
        (f"{INCIDENT}/v1:integrations:topic", "sent", "kafka:notifications.integrations")]
    assert planned.webhooks == []  # integrations has no webhook
    assert line.record.last_version == 1


def test_every_lifecycle_change_notifies_but_alert_repeats_and_evidence_do_not(stream, make_alert):
    line = stream()
    assert line.attach(make_alert()).notifications == []
    assert line.run(c.AddEvidence(title="graph", url="https://g")).notifications == []
    kinds = []
    for command in (c.Acknowledge(), c.PostUpdate(message="on it"), c.AddMitigation(description="restart"),
                    c.ChangeCommander(commander="bob"), c.Resolve(), c.Close(verification="quiet for 1h"),
                    c.Reopen(reason="back")):
        kinds += [n.kind for n in line.run(command).notifications]
    assert kinds == ["acknowledged", "updated", "updated", "updated", "resolved", "closed", "reopened"]
    assert "on it" in line.planned[-6].notifications[0].text


def test_a_redelivered_event_is_a_duplicate(stream, org, now):
    line = stream()
    line.run(c.Acknowledge())
    for audit in line.audits:
        planned = handle_event(line.record, audit, org, now)
        assert planned.duplicate and planned.notifications == [] and planned.log == [] and planned.webhooks == []
        assert planned.record == line.record


def test_escalation_steps_name_their_targets_and_failure_tells_the_fallback(stream):
    line = stream()
    page = line.run(c.RecordEscalation(round=0, level=1, targets=["person:alice"], timeout_seconds=600),
                    actor="escalation")
    assert [(n.team, n.kind, n.targets) for n in page.notifications] == [("integrations", "escalated", ["person:alice"])]
    assert "Paging person:alice" in page.notifications[0].text and "level 2" in page.notifications[0].text
    failed = line.run(c.MarkEscalationFailed(round=0, fallback_team="incident-managers"), actor="escalation")
    assert teams(failed) == ["integrations", "incident-managers"]
    assert all(n.kind == "escalation_failed" and "ESCALATION FAILED" in n.text for n in failed.notifications)


def test_a_security_incident_is_told_only_on_the_security_topic(stream):
    line = stream(labels={"alertname": "Intrusion", "category": "security"}, service="checkout-api")
    assert line.state.restricted and line.state.regulated is False
    assert teams(line.planned[0]) == ["security"]
    failed = line.run(c.MarkEscalationFailed(round=0, fallback_team="incident-managers"), actor="escalation")
    assert teams(failed) == ["security"]  # not even the fallback channel learns it exists
    assert teams(line.run(c.Resolve())[0]) == ["security"]


def test_a_regulated_incident_also_tells_compliance_its_milestones(stream):
    line = stream(labels={"alertname": "LedgerMismatch", "category": "data-integrity"}, service="checkout-api")
    assert line.state.regulated
    assert teams(line.planned[0]) == ["payments", "compliance"]
    page = line.run(c.RecordEscalation(round=0, level=0, targets=["person:dave"], timeout_seconds=300),
                    actor="escalation")
    assert teams(page) == ["payments"]  # pages are the owners' business
    assert teams(line.run(c.Acknowledge())) == ["payments"]
    assert teams(line.run(c.Resolve())[0]) == ["payments", "compliance"]
    assert teams(line.run(c.Close(verification="reconciled"))) == ["payments", "compliance"]


def test_a_regulated_escalation_failure_reaches_owners_fallback_and_compliance(stream):
    line = stream(labels={"alertname": "LedgerMismatch", "category": "data-integrity"}, service="checkout-api")
    failed = line.run(c.MarkEscalationFailed(round=1, fallback_team="incident-managers"), actor="escalation")
    assert teams(failed) == ["payments", "incident-managers", "compliance"]


def test_repeated_reminders_back_off_and_the_log_keeps_the_held_back_ones(stream, org):
    line = stream()
    base = org.notifications.repeat_backoff  # 1m, doubling up to 30m
    statuses = []
    for _ in range(12):
        planned = line.run(reminder(), actor="system")
        statuses.append(planned.log[0].status)
        line.at(minutes=1)
    # Sent at 0; held 1m -> sent at 1; held 2m -> sent at 3; held 4m -> sent at 7; held 8m -> 15...
    sent_at = [minute for minute, status in enumerate(statuses) if status == "sent"]
    assert sent_at == [0, 1, 3, 7]
    assert statuses.count("suppressed") == 8
    held = next(p for p in line.planned if p.log and p.log[0].status == "suppressed")
    assert held.notifications == [] and held.webhooks == []
    assert held.log[0].record_id.endswith(":suppressed") and held.log[0].text.startswith("held back")
    last_sent, interval = line.record.sent["update_due"]
    assert interval == 8 * base.total_seconds()


def test_the_back_off_is_capped(stream, org):
    line = stream()
    for _ in range(12):
        line.run(reminder(), actor="system")
        line.at(hours=1)
    assert line.record.sent["update_due"][1] == org.notifications.repeat_backoff_max.total_seconds()


def test_an_update_resets_the_reminder_back_off_and_other_kinds_are_never_held(stream):
    line = stream()
    line.run(reminder(), actor="system")
    line.at(seconds=10)
    assert line.run(reminder(), actor="system").log[0].status == "suppressed"
    assert line.run(c.PostUpdate(message="m")).notifications  # people's updates are never held back
    assert "update_due" not in line.record.sent
    assert line.run(reminder(), actor="system").log[0].status == "sent"
    for _ in range(3):
        assert line.run(c.PostUpdate(message="again")).notifications


def test_a_reopen_resets_every_back_off(stream):
    line = stream()
    line.run(reminder(), actor="system")
    line.run(c.Resolve())
    line.run(c.Reopen(reason="back"))
    assert line.record.sent == {}


def test_a_team_with_a_webhook_gets_a_delivery_per_notification(stream, make_org, raw_config, now):
    teams_config = dict(raw_config["teams"])
    teams_config["integrations"] = dict(teams_config["integrations"], webhook={"url": "https://hooks.example.com/x"})
    line = stream(organisation=make_org(teams=teams_config))
    [delivery] = line.planned[0].webhooks
    assert delivery.url == "https://hooks.example.com/x" and delivery.attempt == 1 and delivery.not_before == now
    assert delivery.notification == line.planned[0].notifications[0]


# --- webhooks --------------------------------------------------------------------------------------


@pytest.fixture
def hooked(make_org, raw_config) -> Organisation:
    teams_config = dict(raw_config["teams"])
    teams_config["payments"] = dict(teams_config["payments"], webhook={
        "url": "https://hooks.example.com/p", "max_attempts": 3, "backoff": "2s"})
    return make_org(teams=teams_config)


@pytest.fixture
def delivery(now) -> WebhookDelivery:
    note = Notification(
        notification_id=f"{INCIDENT}/v1:payments", kind="opened", team="payments", incident_id=INCIDENT,
        title="Checkout down", text="Incident opened", severity="SEV1", service="checkout-api", status="triggered",
        commander="dave", category="operational", runbook_url="https://runbooks.example.com/c",
        incident_url=f"http://127.0.0.1:8080/v1/incidents/{INCIDENT}", event_id=f"{INCIDENT}/v1", occurred_at=now,
    )
    return WebhookDelivery(notification=note, url="https://hooks.example.com/p", attempt=1, not_before=now)


def test_slack_payload(delivery):
    payload = slack_payload(delivery.notification)
    assert payload["text"] == "Incident opened"
    attachment = payload["attachments"][0]
    assert attachment["title"] == INCIDENT and attachment["title_link"].endswith(INCIDENT)
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {"Severity": "SEV1", "Status": "triggered", "Service": "checkout-api", "Commander": "dave",
                      "Runbook": "https://runbooks.example.com/c"}


def test_failed_attempts_back_off_exponentially_then_give_up(hooked, delivery, now):
    second = after_failure(delivery, hooked, now)
    assert (second.attempt, second.not_before) == (2, now + timedelta(seconds=2))
    third = after_failure(second, hooked, now)
    assert (third.attempt, third.not_before) == (3, now + timedelta(seconds=4))
    assert after_failure(third, hooked, now) is None  # max_attempts 3


@pytest.mark.parametrize(("status", "error", "retryable"), [
    (200, None, False), (204, None, False), (500, "HTTP 500", True), (503, "HTTP 503", True),
    (429, "HTTP 429", True), (408, "HTTP 408", True), (404, "HTTP 404", False), (400, "HTTP 400", False),
    (403, "HTTP 403", False), (302, "HTTP 302", False),
])
def test_response_error(status, error, retryable):
    assert response_error(status) == (error, retryable)


def test_an_attempt_is_sent_or_failed_and_retried_or_dead_lettered(hooked, delivery, now):
    sent = after_attempt(delivery, None, False, hooked, now)
    assert (sent.log.status, sent.retry, sent.dead) == ("sent", None, None)

    failed = after_attempt(delivery, "HTTP 503", True, hooked, now)
    assert (failed.log.status, failed.log.error, failed.log.attempt) == ("failed", "HTTP 503", 1)
    assert failed.retry.attempt == 2 and failed.dead is None

    last = delivery.model_copy(update={"attempt": 3})
    dead = after_attempt(last, "ConnectError: refused", True, hooked, now)
    assert dead.retry is None and dead.log.status == "dead_lettered"
    assert dead.dead.last_error == "ConnectError: refused" and dead.dead.attempt == 3

    refused = after_attempt(delivery, "HTTP 404", False, hooked, now)
    assert refused.retry is None and refused.dead.last_error == "HTTP 404 (not retried)"
    assert refused.log.status == "dead_lettered" and refused.log.attempt == 1


def test_each_attempt_has_its_own_log_record(delivery, now):
    ids = {webhook_record(delivery.model_copy(update={"attempt": n}), "failed", now, "x").record_id for n in (1, 2, 3)}
    assert len(ids) == 3
    record = webhook_record(delivery, "sent", now)
    assert record.channel == "webhook:payments" and record.notification_id == delivery.notification.notification_id
