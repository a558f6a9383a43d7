"""Notifications on the real broker: webhooks with retries and a dead-letter topic, who hears
about security and regulated incidents, status-update reminders, MTTR breaches, back-off.

Team ``hooks`` posts to ``/flaky`` on a loopback receiver this module runs (the first
attempt of every message fails), team ``hooks-broken`` to ``/broken`` (always 503).
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import read_topic, wait_until
from test_escalation import audit, gap, metric, open_incident, wait_audit

FLAKY_BACKOFF = 0.4  # teams.hooks.webhook.backoff
BROKEN_BACKOFF, BROKEN_ATTEMPTS = 0.2, 3  # teams.hooks-broken.webhook
CADENCE = 2.0  # services.cadence-service.update_cadence.SEV3
REPEAT_BACKOFF = 2.0  # notifications.repeat_backoff


class Receiver:
    """A Slack-style incoming webhook on loopback that records every request."""

    def __init__(self, port: int) -> None:
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    seen = [r for r in receiver.requests if r["path"] == self.path and r["body"] == body]
                    receiver.requests.append({"path": self.path, "body": body, "at": time.monotonic()})
                failing = self.path == "/broken" or (self.path == "/flaky" and not seen)
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def for_incident(self, path: str, incident_id: str) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path and r["body"]["attachments"][0]["title"] == incident_id]


@pytest.fixture(scope="module")
def receiver(platform):
    running = Receiver(int(platform.env["WEBHOOK_PORT"]))
    running.thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()
        running.thread.join(timeout=5)


def log_of(admin, incident_id: str) -> list[dict]:
    return admin.get(f"/v1/incidents/{incident_id}").json()["communication_log"]


def test_webhook_that_fails_first_is_retried_with_back_off_then_succeeds(platform, intake, admin, receiver, unique):
    incident_id = open_incident(intake, "webhook-service", f"FlakyHook-{unique}")

    def opened_delivered():
        rows = [r for r in log_of(admin, incident_id) if r["channel"] == "webhook:hooks" and r["kind"] == "opened"]
        return rows if any(r["status"] == "sent" for r in rows) else None

    rows = wait_until(opened_delivered, what="the opened notification delivered to the webhook")
    assert [(r["status"], r["attempt"]) for r in rows] == [("failed", 1), ("sent", 2)]
    assert rows[0]["error"] == "HTTP 503" and rows[1]["error"] is None
    assert gap(datetime.fromisoformat(rows[0]["occurred_at"]), datetime.fromisoformat(rows[1]["occurred_at"])) >= FLAKY_BACKOFF

    posts = [r for r in receiver.for_incident("/flaky", incident_id) if r["body"]["text"].startswith("Incident opened")]
    assert len(posts) == 2 and posts[0]["body"] == posts[1]["body"]
    assert posts[1]["at"] - posts[0]["at"] >= FLAKY_BACKOFF
    # The Slack incoming-webhook format: text plus an attachment with the structured fields.
    body = posts[1]["body"]
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["Service"] == "webhook-service" and fields["Status"] == "triggered"
    assert body["attachments"][0]["title_link"].endswith(f"/v1/incidents/{incident_id}")
    dead = read_topic("notifications.dead-letter", lambda m: m["notification"]["incident_id"] == incident_id)
    assert dead == []


def test_webhook_that_always_fails_lands_on_the_dead_letter_topic_with_the_reason(platform, intake, admin, receiver,
                                                                                   unique):
    incident_id = open_incident(intake, "broken-webhook-service", f"BrokenHook-{unique}")
    dead = read_topic("notifications.dead-letter", lambda m: m["notification"]["incident_id"] == incident_id
                      and m["notification"]["kind"] == "opened", until=bool, timeout=30)
    assert len(dead) == 1
    letter = dead[0]
    assert letter["_key"] == incident_id
    assert letter["attempt"] == BROKEN_ATTEMPTS and letter["last_error"] == "HTTP 503"
    assert letter["url"].endswith("/broken")
    assert letter["notification"]["team"] == "hooks-broken"

    def logged():
        rows = [r for r in log_of(admin, incident_id) if r["channel"] == "webhook:hooks-broken" and r["kind"] == "opened"]
        return rows if any(r["status"] == "dead_lettered" for r in rows) else None

    rows = wait_until(logged, what="the dead letter in the communication log")
    assert [(r["status"], r["attempt"]) for r in rows] == [("failed", 1), ("failed", 2), ("dead_lettered", 3)]
    assert all(r["error"] == "HTTP 503" for r in rows)
    posts = [r["at"] for r in receiver.for_incident("/broken", incident_id) if r["body"]["text"].startswith("Incident opened")]
    assert len(posts) == BROKEN_ATTEMPTS
    # Exponential back-off: 0.2 s, then 0.4 s.
    assert posts[1] - posts[0] >= BROKEN_BACKOFF and posts[2] - posts[1] >= 2 * BROKEN_BACKOFF
    # The team topic itself still carried the notification.
    notes = read_topic("notifications.hooks-broken", lambda m: m["incident_id"] == incident_id)
    assert "opened" in [m["kind"] for m in notes]


def _kinds(topic: str, incident_id: str) -> list[str]:
    return [m["kind"] for m in read_topic(topic, lambda m: m["incident_id"] == incident_id)]


TEAM_TOPICS = ("integrations", "payments", "pager", "security", "incident-managers", "compliance", "hooks",
               "hooks-broken", "cadence")


def test_security_incident_is_told_only_on_the_security_topic(platform, intake, unique):
    incident_id = open_incident(intake, "billing-worker", f"Intrusion-{unique}", labels={
        "alertname": f"Intrusion-{unique}", "category": "security"})
    # The first page comes after the opening: once it is on the topic, every team that
    # was going to hear about the opening has heard.
    read_topic("notifications.security", lambda m: m["incident_id"] == incident_id,
               until=lambda found: "escalated" in [m["kind"] for m in found])
    heard = {team: _kinds(f"notifications.{team}", incident_id) for team in TEAM_TOPICS}
    assert heard.pop("security")[:2] == ["opened", "escalated"]
    assert heard == {team: [] for team in heard}


def test_regulated_incident_also_tells_the_compliance_team(platform, intake, admin, unique):
    incident_id = open_incident(intake, "checkout-api", f"LedgerMismatch-{unique}", labels={
        "alertname": f"LedgerMismatch-{unique}", "category": "data-integrity"})
    assert admin.get(f"/v1/incidents/{incident_id}").json()["regulated"] is True
    assert admin.post(f"/v1/incidents/{incident_id}/resolve", json={"note": "reconciled"}).status_code == 200
    compliance = read_topic("notifications.compliance", lambda m: m["incident_id"] == incident_id,
                            until=lambda found: "resolved" in [m["kind"] for m in found])
    assert [m["kind"] for m in compliance] == ["opened", "resolved"]  # milestones, not every page
    owners = read_topic("notifications.payments", lambda m: m["incident_id"] == incident_id,
                        until=lambda found: "resolved" in [m["kind"] for m in found])
    lifecycle = [m["kind"] for m in owners if m["kind"] in ("opened", "escalated", "resolved")]
    assert lifecycle == ["opened", "escalated", "resolved"]


def test_status_update_reminders_repeat_back_off_and_the_mttr_breach_is_counted(platform, intake, admin, unique):
    breaches_before = metric(platform, "mttr_target_breaches_total", severity="SEV3")
    # Detected a day (the SEV3 MTTR target) minus 4 s ago: the target is breached 4 s from now.
    detected = datetime.now(timezone.utc) - timedelta(days=1) + timedelta(seconds=4)
    incident_id = open_incident(intake, "cadence-service", f"SlowUpdates-{unique}",
                                starts_at=detected.isoformat().replace("+00:00", "Z"))

    def reminders(events):
        return [e for e in events if e["change"] == "update_due"]

    events = wait_audit(incident_id, lambda ev: len(reminders(ev)) >= 4 and any(
        e["change"] == "mttr_target_breached" for e in ev), timeout=30, what="four reminders and the breach")
    opened = events[0]
    assert opened["change"] == "opened"
    due = reminders(events)
    assert CADENCE - 0.5 <= gap(opened["occurred_at"], due[0]["occurred_at"]) <= CADENCE + 1.5
    for before, after in zip(due, due[1:]):
        assert CADENCE - 0.5 <= gap(before["occurred_at"], after["occurred_at"]) <= CADENCE + 1.5

    # Every reminder is in the audit trail, but the team topic hears them backed off:
    # sent, then held back for 2 s, 4 s, 8 s... (each repeat waits twice as long).
    notes = read_topic("notifications.cadence", lambda m: m["incident_id"] == incident_id)
    sent = [m for m in notes if m["kind"] == "reminder"]
    commander = admin.get(f"/v1/incidents/{incident_id}").json()["commander"]
    assert sent and all(m["targets"] == [f"person:{commander}"] for m in sent)
    log = [r for r in log_of(admin, incident_id) if r["kind"] == "reminder"]
    assert len(log) >= len(due)
    assert "suppressed" in [r["status"] for r in log]
    assert len(sent) < len(due)
    delivered = [datetime.fromisoformat(r["occurred_at"]) for r in log if r["status"] == "sent"]
    for index, (before, after) in enumerate(zip(delivered, delivered[1:])):
        assert gap(before, after) >= REPEAT_BACKOFF * 2 ** index, (index, before, after)

    breach = next(e for e in events if e["change"] == "mttr_target_breached")
    assert breach["data"]["target_minutes"] == 24 * 60
    assert 0 <= gap(detected + timedelta(days=1), breach["occurred_at"]) <= 1.5
    assert "mttr_target_breached" in [m["kind"] for m in notes]
    wait_until(lambda: metric(platform, "mttr_target_breaches_total", severity="SEV3") >= breaches_before + 1,
               what="mttr_target_breaches_total to count the breach")

    # An update restarts the clock: the next reminder is a full cadence after it.
    response = admin.post(f"/v1/incidents/{incident_id}/updates", json={"message": "still digging"})
    assert response.status_code == 200, response.text
    events = wait_audit(incident_id, lambda ev: reminders(ev)[-1]["version"] > next(
        e for e in ev if e["change"] == "update_posted")["version"], what="the reminder after the update")
    posted = next(e for e in events if e["change"] == "update_posted")
    following = next(e for e in reminders(events) if e["version"] > posted["version"])
    assert gap(posted["occurred_at"], following["occurred_at"]) >= CADENCE - 0.5
    assert admin.post(f"/v1/incidents/{incident_id}/resolve", json={}).status_code == 200
    assert len([e for e in audit(incident_id) if e["change"] == "mttr_target_breached"]) == 1
