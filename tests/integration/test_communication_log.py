"""The communication log: every update people post and every notification, in order, in the API."""
from __future__ import annotations

from datetime import datetime

from harness import read_topic, wait_until
from test_escalation import audit, open_incident


def test_communication_log_lists_every_update_and_notification_in_order(platform, intake, admin, unique):
    incident_id = open_incident(intake, "billing-worker", f"LogEverything-{unique}")

    def told(count: int) -> list[dict]:
        # Paced like people are: each step once the team has heard about the previous one
        # (otherwise a step and the previous step's notification may swap places in time).
        return read_topic("notifications.payments", lambda m: m["incident_id"] == incident_id,
                          until=lambda found: len(found) >= count)

    told(2)  # the opening and the first page
    steps = [
        ("updates", {"message": "looking at the worker queue"}),
        ("acknowledge", {"note": "mine"}),
        ("updates", {"message": "restarted the worker"}),
        ("resolve", {"note": "queue drained"}),
    ]
    for count, (path, body) in enumerate(steps, start=3):
        response = admin.post(f"/v1/incidents/{incident_id}/{path}", json=body)
        assert response.status_code == 200, response.text
        notes = told(count)

    # Every notification the team topic carried for this incident...
    assert [m["kind"] for m in notes] == ["opened", "escalated", "updated", "acknowledged", "updated", "resolved"]

    def complete():
        log = admin.get(f"/v1/incidents/{incident_id}").json()["communication_log"]
        return log if len([r for r in log if r["direction"] == "notification"]) >= len(notes) else None

    log = wait_until(complete, what="every notification in the communication log")
    # ...is in the log, and so is every update, in the order they happened.
    assert [(r["direction"], r["kind"], r["status"]) for r in log] == [
        ("notification", "opened", "sent"),
        ("notification", "escalated", "sent"),
        ("update", "update", "posted"),
        ("notification", "updated", "sent"),
        ("notification", "acknowledged", "sent"),
        ("update", "update", "posted"),
        ("notification", "updated", "sent"),
        ("notification", "resolved", "sent"),
    ]
    assert [r["record_id"] for r in log if r["direction"] == "notification"] == [
        f"{m['notification_id']}:topic" for m in notes]
    assert all(r["channel"] == "kafka:notifications.payments" and r["team"] == "payments"
               for r in log if r["direction"] == "notification")
    updates = [r for r in log if r["direction"] == "update"]
    assert [r["text"] for r in updates] == ["looking at the worker queue", "restarted the worker"]
    assert all(r["author"] for r in updates)
    moments = [datetime.fromisoformat(r["occurred_at"]) for r in log]
    assert moments == sorted(moments)
    # The notification for an update carries its text to the team.
    assert "looking at the worker queue" in notes[2]["text"]

    # Each notification follows the audit event it reports, in the audit's order.
    versions = {e["change"]: e["version"] for e in audit(incident_id) if e["change"] != "update_posted"}
    noted = [int(m["event_id"].rsplit("/v", 1)[1]) for m in notes]
    assert noted == sorted(noted)
    assert versions["opened"] == noted[0] and versions["resolved"] == noted[-1]
