"""The mission's two scenarios, ending with the postmortem: created on resolve, completed with
action items through the API; a reopened incident cannot close until a new action item exists."""
from __future__ import annotations

from datetime import datetime, timedelta

import yaml

from harness import sql, wait_until
from metrics_queries import incident_id_for


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def refused(response, status: int, *phrases: str) -> dict:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    for phrase in phrases:
        assert phrase in body["error"], body
    return body


def audit_changes(incident_id: str) -> list[str]:
    rows = sql("SELECT change FROM audit_events WHERE incident_id = $1 ORDER BY version", incident_id)
    return [row["change"] for row in rows]


def test_resolved_within_target_then_postmortem_completed_with_action_items(platform, intake, admin, unique):
    alertname = f"CRMSyncFailing-{unique}"
    ok(intake.post("/v1/alerts", json={"service": "connector:CRM", "summary": "CRM sync failing",
                                       "severity": "critical", "labels": {"alertname": alertname}}), 202)
    incident_id = incident_id_for(alertname)
    path = f"/v1/incidents/{incident_id}"
    incident = ok(admin.post(f"{path}/acknowledge"))
    assert incident["severity"] == "SEV1" and incident["status"] == "acknowledged"
    commander = incident["commander"]
    ok(admin.post(f"{path}/mitigations", json={"description": "paused the sync job", "playbook_step": 1}))
    ok(admin.post(f"{path}/updates", json={"message": "sync paused, replaying failed batches"}))
    refused(admin.get(f"{path}/postmortem"), 404, "no postmortem")  # none before resolution

    resolved = ok(admin.post(f"{path}/resolve", json={"note": "batches replayed"}))
    assert resolved["status"] == "resolved"
    record = yaml.safe_load(admin.get(path, headers={"Accept": "application/yaml"}).text)
    assert record["incident_id"] == incident_id and record["status"] == "resolved"
    assert 0 <= record["mttr_minutes"] <= 60  # the SEV1 target

    draft = ok(admin.get(f"{path}/postmortem"))
    assert (draft["status"], draft["required"], draft["owner"]) == ("draft", True, commander)
    created = datetime.fromisoformat(draft["created_at"])
    assert datetime.fromisoformat(draft["due_at"]) - created == timedelta(days=5)
    assert draft["impact"]  # prefilled from the incident
    steps = [line.split("Z ", 1)[1] for line in draft["timeline"]]
    assert steps[0].startswith("opened SEV1 on connector:CRM")
    assert any(step.startswith("mitigation by") for step in steps) and steps[-1] == "resolved"

    refused(admin.post(f"{path}/postmortem/complete"), 409, "summary", "root_cause")
    edited = ok(admin.put(f"{path}/postmortem", json={
        "summary": "The CRM connector stopped syncing for 20 minutes.",
        "root_cause": "An expired API credential at the CRM vendor.",
        "contributing_factors": "No alert on credential expiry.",
        "what_went_well": "The playbook's replay step worked.",
    }))
    assert edited["root_cause"].startswith("An expired")
    refused(admin.post(f"{path}/postmortem/complete"), 409, "at least one action item")

    # Bad input names the field and changes nothing.
    refused(admin.post(f"{path}/postmortem/action-items", json={"title": "rotate credentials"}), 400, "owner")
    refused(admin.post(f"{path}/postmortem/action-items", json={"title": "t", "owner": "bob", "priority": "P9"}),
            400, "priority")
    refused(admin.put(f"{path}/postmortem", json={"rootcause": "typo"}), 400, "rootcause")

    added = ok(admin.post(f"{path}/postmortem/action-items", json={
        "title": "Alert on credential expiry", "owner": "bob", "due_date": "2030-01-31", "priority": "P2"}), 201)
    [item] = added["action_items"]
    assert (item["item_id"], item["owner"], item["status"], item["priority"]) == ("AI-1", "bob", "open", "P2")
    refused(admin.patch(f"{path}/postmortem/action-items/AI-1", json={"status": "finished"}), 400, "status")
    refused(admin.patch(f"{path}/postmortem/action-items/AI-7", json={"status": "done"}), 404, "AI-7")
    updated = ok(admin.patch(f"{path}/postmortem/action-items/AI-1", json={"status": "in_progress", "owner": "carol"}))
    assert (updated["action_items"][0]["status"], updated["action_items"][0]["owner"]) == ("in_progress", "carol")

    completed = ok(admin.post(f"{path}/postmortem/complete"))
    assert completed["status"] == "completed" and completed["completed_at"]
    refused(admin.post(f"{path}/postmortem/complete"), 409, "already completed")
    closed = ok(admin.post(f"{path}/close", json={"verification": "sync healthy for an hour"}))
    assert closed["status"] == "closed" and closed["postmortem"]["status"] == "completed"

    [row] = sql("SELECT postmortem_required, postmortem_status FROM incidents WHERE incident_id = $1", incident_id)
    assert row == {"postmortem_required": True, "postmortem_status": "completed"}
    changes = audit_changes(incident_id)
    for change in ("resolved", "postmortem_created", "postmortem_edited", "action_item_added", "action_item_updated",
                   "postmortem_completed", "closed"):
        assert change in changes
    assert changes.index("postmortem_created") == changes.index("resolved") + 1
    bundle = ok(admin.get(f"{path}/export"))
    assert bundle["postmortem"]["action_items"][0]["title"] == "Alert on credential expiry"


def test_recurrence_reopens_and_close_needs_a_new_corrective_action(platform, intake, admin, unique):
    alertname = f"CheckoutErrors-{unique}"
    alert = {"service": "checkout-api", "summary": "checkout error rate high", "severity": "error",
             "labels": {"alertname": alertname}}
    ok(intake.post("/v1/alerts", json=alert), 202)
    incident_id = incident_id_for(alertname)
    path = f"/v1/incidents/{incident_id}"

    # The monitoring system resolves it: a SEV2, so the postmortem draft appears.
    ok(intake.post("/v1/alerts", json={**alert, "status": "resolved"}), 202)
    wait_until(lambda: admin.get(path).json()["status"] == "resolved", what="the incident resolved by monitoring")
    postmortem = ok(admin.get(f"{path}/postmortem"))
    assert postmortem["required"] is True and postmortem["status"] == "draft"
    ok(admin.put(f"{path}/postmortem", json={"summary": "Checkout errors", "root_cause": "A bad deploy"}))
    ok(admin.post(f"{path}/postmortem/action-items", json={"title": "Canary deploys", "owner": "dave"}), 201)
    ok(admin.post(f"{path}/postmortem/complete"))
    ok(admin.post(f"{path}/close", json={"verification": "error rate normal"}))

    # The issue recurs: the same incident reopens (not a new one).
    ok(intake.post("/v1/alerts", json=alert), 202)
    reopened = wait_until(lambda: (lambda i: i if i["reopen_count"] == 1 else None)(admin.get(path).json()),
                          what="the incident reopened by the recurrence")
    assert reopened["status"] == "triggered"
    assert sql("SELECT count(*) AS n FROM incidents WHERE record->'labels'->>'alertname' = $1", alertname) == [{"n": 1}]
    ok(admin.post(f"{path}/resolve", json={"note": "rolled back again"}))

    refused(admin.post(f"{path}/close", json={"verification": "looks fine"}), 409, "additional corrective action")
    # Updating the old item is not a new corrective action.
    ok(admin.patch(f"{path}/postmortem/action-items/AI-1", json={"status": "done"}))
    refused(admin.post(f"{path}/close", json={"verification": "looks fine"}), 409, "additional corrective action")

    added = ok(admin.post(f"{path}/postmortem/action-items", json={
        "title": "Block deploys while error budget is spent", "owner": "erin", "priority": "P1"}), 201)
    assert [item["item_id"] for item in added["action_items"]] == ["AI-1", "AI-2"]
    assert added["action_items"][1]["reopen_generation"] == 1
    closed = ok(admin.post(f"{path}/close", json={"verification": "quiet for a day"}))
    assert closed["status"] == "closed" and closed["reopen_count"] == 1

    changes = audit_changes(incident_id)
    assert changes.count("reopened") == 1 and changes.count("closed") == 2
    assert changes.index("reopened") < changes.index("action_item_added", changes.index("reopened"))
    [row] = sql("SELECT reopen_count, status, first_resolved_at < resolved_at AS later FROM incidents"
                " WHERE incident_id = $1", incident_id)
    assert row == {"reopen_count": 1, "status": "closed", "later": True}
