"""Missing postmortem: a required postmortem past its due date raises reminders to its owner and
team, and counts against postmortem_completion_rate until it is completed.

The test organisation gives team ``drills`` (service ``postmortem-drill``) a 2-second due time
(postmortem.due_after_by_team), so only this test's postmortems fall due during the session.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from harness import read_topic, sql, wait_until
from metrics_queries import scrape, wait_for_agreement


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def reminders_for(samples, team: str) -> float:
    return samples.get("postmortem_reminders_total", {}).get((("team", team),), 0.0)


def test_an_overdue_postmortem_sends_reminders_and_counts_against_the_rate(platform, admin, unique):
    before = wait_for_agreement(platform)
    reminded_before = reminders_for(scrape(platform), "drills")
    incident = ok(admin.post("/v1/incidents", json={"title": f"Drill {unique}", "service": "postmortem-drill",
                                                    "severity": "SEV2"}), 201)
    incident_id, owner = incident["incident_id"], incident["commander"]
    assert incident["team"] == "drills" and owner in ("dave", "erin")
    path = f"/v1/incidents/{incident_id}"
    postmortem = ok(admin.post(f"{path}/resolve"))["postmortem"]
    due_at = datetime.fromisoformat(postmortem["due_at"])
    assert due_at - datetime.fromisoformat(postmortem["created_at"]) == timedelta(seconds=2)
    assert postmortem["owner"] == owner and postmortem["status"] == "draft"

    # The escalation service notices the due date and triage records the reminder.
    reminder = wait_until(
        lambda: sql("SELECT occurred_at, actor FROM audit_events WHERE incident_id = $1"
                    " AND change = 'postmortem_overdue'", incident_id),
        timeout=20, what="a postmortem_overdue audit event",
    )[0]
    assert reminder["occurred_at"] >= due_at and reminder["actor"] == "system"
    notes = read_topic("notifications.drills", lambda n: n["incident_id"] == incident_id,
                       until=lambda found: any(n["kind"] == "reminder" for n in found))
    [note] = [n for n in notes if n["kind"] == "reminder"]
    assert note["targets"] == [f"person:{owner}"]
    assert f"Postmortem overdue for [SEV2] {incident_id}" in note["text"] and f"Owner: {owner}" in note["text"]
    logged = sql("SELECT channel, status FROM communications WHERE incident_id = $1 AND kind = 'reminder'", incident_id)
    assert logged == [{"channel": "kafka:notifications.drills", "status": "sent"}]
    assert ok(admin.get(f"{path}/postmortem"))["reminders_sent"] == 1

    # It counts against the completion rate (and the exporter agrees with PostgreSQL on every number).
    overdue = wait_for_agreement(platform)
    assert overdue["postmortems_overdue"] == before["postmortems_overdue"] + 1
    assert overdue["postmortems_required"] == before["postmortems_required"] + 1
    rate = overdue["postmortems_completed"] / (overdue["postmortems_completed"] + overdue["postmortems_overdue"])
    assert overdue["postmortem_completion_rate"] == rate < 1.0
    assert reminders_for(scrape(platform), "drills") == reminded_before + 1

    # Completing it late takes it out of the overdue count: it is completed, not missed.
    ok(admin.put(f"{path}/postmortem", json={"summary": "drill", "root_cause": "none: a drill"}))
    ok(admin.post(f"{path}/postmortem/action-items", json={"title": "run the drill monthly", "owner": owner}), 201)
    ok(admin.post(f"{path}/postmortem/complete"))
    done = wait_for_agreement(platform)  # the API answered once PostgreSQL had the completion
    assert done["postmortems_completed"] == overdue["postmortems_completed"] + 1
    assert done["postmortems_overdue"] == overdue["postmortems_overdue"] - 1
    assert done["postmortem_completion_rate"] > overdue["postmortem_completion_rate"]
