"""The incident lifecycle end to end: the mission's two scenarios, 409s, audit trail, YAML record."""
from __future__ import annotations

import yaml

from harness import incident_for, read_topic, sql, wait_until


def _fire(intake, alertname: str, service: str = "connector:CRM", status: str = "firing", **extra) -> None:
    body = {"service": service, "summary": f"{alertname} on {service}", "severity": "critical",
            "status": status, "labels": {"alertname": alertname}, **extra}
    response = intake.post("/v1/alerts", json=body)
    assert response.status_code == 202, response.text


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def test_incident_resolved_within_target_mttr(platform, intake, admin, unique):
    alertname = f"CRMDown-{unique}"
    _fire(intake, alertname)
    incident = incident_for(admin, alertname)
    iid = incident["incident_id"]
    assert incident["severity"] == "SEV1" and incident["playbook"]["name"] == "crm-connector"
    assert incident["mttr_target_minutes"] == 60

    _ok(admin.post(f"/v1/incidents/{iid}/acknowledge", json={"note": "on it"}))
    after = _ok(admin.post(f"/v1/incidents/{iid}/mitigations", json={"description": "paused sync", "playbook_step": 1}))
    assert after["status"] == "mitigating"
    assert after["playbook"]["steps"][1]["done"] is True
    _ok(admin.post(f"/v1/incidents/{iid}/updates", json={"message": "vendor confirms outage"}))
    resolved = _ok(admin.post(f"/v1/incidents/{iid}/resolve", json={"note": "vendor recovered"}))
    assert resolved["status"] == "resolved"
    assert resolved["mttr_minutes"] is not None and resolved["mttr_minutes"] < resolved["mttr_target_minutes"]
    # A SEV1 ends in a postmortem: created on resolve, owned by the commander.
    postmortem = resolved["postmortem"]
    assert postmortem["status"] == "draft" and postmortem["owner"] == resolved["commander"]
    assert any("acknowledged" in line for line in postmortem["timeline"])

    incomplete = admin.post(f"/v1/incidents/{iid}/postmortem/complete")
    assert incomplete.status_code == 409 and "summary" in incomplete.json()["error"]
    _ok(admin.put(f"/v1/incidents/{iid}/postmortem",
                  json={"summary": "CRM vendor outage", "impact": "Sync paused 20 min", "root_cause": "Vendor DNS"}))
    _ok(admin.post(f"/v1/incidents/{iid}/postmortem/action-items",
                   json={"title": "Alert on vendor DNS", "owner": "alice", "priority": "P2"}), 201)
    done = _ok(admin.post(f"/v1/incidents/{iid}/postmortem/complete"))
    assert done["status"] == "completed" and len(done["action_items"]) == 1

    closed = _ok(admin.post(f"/v1/incidents/{iid}/close", json={"verification": "sync healthy for 1h"}))
    assert closed["status"] == "closed"

    # The YAML record has the mission's shape.
    response = admin.get(f"/v1/incidents/{iid}", headers={"Accept": "application/yaml"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/yaml")
    record = yaml.safe_load(response.text)
    assert list(record)[:5] == ["incident_id", "severity", "service", "status", "mttr_minutes"]
    assert record["incident_id"] == iid and record["severity"] == "SEV1"
    assert record["service"] == "connector:CRM" and record["status"] == "closed"
    assert isinstance(record["mttr_minutes"], float)

    # Every state change is one audit event, in order, on the topic and in PostgreSQL.
    timeline = closed["timeline"]
    versions = [entry["version"] for entry in timeline]
    assert versions == list(range(1, len(versions) + 1))
    assert timeline[0]["type"] == "incident.opened" and timeline[-1]["type"] == "incident.closed"
    changes = [entry["change"] for entry in timeline]
    for expected in ("acknowledged", "mitigation_added", "update_posted", "resolved", "postmortem_created",
                     "postmortem_completed", "closed"):
        assert expected in changes
    on_topic = read_topic("incident.audit", lambda m: m["incident_id"] == iid,
                          until=lambda found: any(m["type"] == "incident.closed" for m in found))
    assert sorted({m["version"] for m in on_topic}) == versions
    rows = sql("SELECT count(*) AS n FROM audit_events WHERE incident_id = $1", iid)
    assert rows[0]["n"] == len(versions)


def test_incident_reopens_due_to_incomplete_mitigation(platform, intake, admin, unique):
    alertname = f"CRMFlapping-{unique}"
    _fire(intake, alertname)
    iid = incident_for(admin, alertname)["incident_id"]
    _ok(admin.post(f"/v1/incidents/{iid}/mitigations", json={"description": "restarted the connector"}))
    _ok(admin.post(f"/v1/incidents/{iid}/resolve"))
    _ok(admin.post(f"/v1/incidents/{iid}/postmortem/action-items", json={"title": "Tune retries", "owner": "bob"}), 201)
    _ok(admin.post(f"/v1/incidents/{iid}/close", json={"verification": "looked fine"}))

    # The issue recurs: the same alert fires again and the same incident reopens.
    _fire(intake, alertname)

    def reopened():
        state = admin.get(f"/v1/incidents/{iid}").json()
        return state if state["status"] == "triggered" and state["reopen_count"] == 1 else None

    state = wait_until(reopened, what="the closed incident to reopen")
    assert state["requires_additional_actions"] is True
    assert state["alert_count"] == 2
    all_for_alert = [i for i in admin.get("/v1/incidents", params={"limit": 1000}).json()["incidents"]
                     if i["incident_id"] == iid]
    assert len(all_for_alert) == 1
    notes = read_topic("notifications.integrations", lambda m: m["incident_id"] == iid,
                       until=lambda found: any(m["kind"] == "reopened" for m in found))
    assert any(m["kind"] == "reopened" for m in notes)

    _ok(admin.post(f"/v1/incidents/{iid}/resolve"))
    refused = admin.post(f"/v1/incidents/{iid}/close", json={"verification": "fixed again"})
    assert refused.status_code == 409
    assert "additional corrective action" in refused.json()["error"]
    _ok(admin.post(f"/v1/incidents/{iid}/postmortem/action-items",
                   json={"title": "Fix the retry storm for good", "owner": "carol", "priority": "P1"}), 201)
    closed = _ok(admin.post(f"/v1/incidents/{iid}/close", json={"verification": "stable for a day"}))
    assert closed["status"] == "closed"
    assert len(closed["postmortem"]["action_items"]) == 2


def test_forbidden_transitions_answer_409_with_the_reason(platform, intake, admin, unique):
    alertname = f"Forbidden-{unique}"
    _fire(intake, alertname, service="billing-worker")
    iid = incident_for(admin, alertname)["incident_id"]
    closing = admin.post(f"/v1/incidents/{iid}/close", json={"verification": "no"})
    assert closing.status_code == 409
    assert "triggered" in closing.json()["error"]
    reopening = admin.post(f"/v1/incidents/{iid}/reopen", json={"reason": "no"})
    assert reopening.status_code == 409
    _ok(admin.post(f"/v1/incidents/{iid}/acknowledge"))
    again = admin.post(f"/v1/incidents/{iid}/acknowledge")
    assert again.status_code == 409 and "already acknowledged" in again.json()["error"]
    assert admin.get("/v1/incidents/INC-2000-01-01-999").status_code == 404
    assert admin.post("/v1/incidents/INC-2000-01-01-999/acknowledge").status_code == 404
    assert admin.post(f"/v1/incidents/{iid}/severity", json={"severity": "SEV9", "reason": "x"}).status_code == 400


def test_monitoring_resolves_when_every_alert_resolves(platform, intake, admin, unique):
    alertname = f"TwoHosts-{unique}"
    for host in ("a", "b"):
        _fire(intake, alertname, service="billing-worker", dedup_key=f"{unique}-{host}")
    incident = wait_until(lambda: (lambda i: i if i["alert_count"] == 2 else None)(incident_for(admin, alertname)),
                          what="both alerts on one incident")
    iid = incident["incident_id"]
    assert len(incident["alerts"]) == 2
    _fire(intake, alertname, service="billing-worker", status="resolved", dedup_key=f"{unique}-a")
    wait_until(lambda: admin.get(f"/v1/incidents/{iid}").json()["alert_count"] == 3, what="the first resolve")
    assert admin.get(f"/v1/incidents/{iid}").json()["status"] == "triggered"
    _fire(intake, alertname, service="billing-worker", status="resolved", dedup_key=f"{unique}-b")
    state = wait_until(lambda: (lambda s: s if s["status"] == "resolved" else None)(admin.get(f"/v1/incidents/{iid}").json()),
                       what="the incident to resolve from monitoring")
    resolved = [entry for entry in state["timeline"] if entry["change"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["actor"].startswith("monitoring:")


def test_people_change_severity_and_commander_with_a_reason(platform, intake, admin, unique):
    alertname = f"Severity-{unique}"
    _fire(intake, alertname, service="billing-worker")
    iid = incident_for(admin, alertname)["incident_id"]
    changed = _ok(admin.post(f"/v1/incidents/{iid}/severity", json={"severity": "SEV1", "reason": "customers affected"}))
    assert changed["severity"] == "SEV1" and changed["mttr_target_minutes"] == 60
    handed = _ok(admin.post(f"/v1/incidents/{iid}/commander", json={"commander": "carol", "reason": "handover"}))
    assert handed["commander"] == "carol"
    entries = {e["change"]: e for e in handed["timeline"]}
    assert "customers affected" in entries["severity_changed"]["summary"]
    missing_reason = admin.post(f"/v1/incidents/{iid}/severity", json={"severity": "SEV2"})
    assert missing_reason.status_code == 400 and "reason" in missing_reason.json()["error"]


def test_security_incident_is_restricted_to_security_roles(platform, intake, admin, client_for, unique):
    alertname = f"Intrusion-{unique}"
    _fire(intake, alertname, service="checkout-api", labels={"alertname": alertname, "category": "security"})
    security = client_for("security-admin")
    incident = incident_for(security, alertname)
    iid = incident["incident_id"]
    assert incident["category"] == "security" and incident["restricted"] is True
    assert incident["team"] == "security" and incident["playbook"]["name"] == "security-response"
    assert admin.get(f"/v1/incidents/{iid}").status_code == 404
    assert all(i["incident_id"] != iid for i in admin.get("/v1/incidents", params={"limit": 1000}).json()["incidents"])
    assert admin.post(f"/v1/incidents/{iid}/acknowledge").status_code == 404
    assert _ok(security.post(f"/v1/incidents/{iid}/acknowledge"))["status"] == "acknowledged"


def test_declared_incident_and_evidence_export(platform, admin, client_for, unique):
    declared = _ok(admin.post("/v1/incidents", json={"title": f"Data drift {unique}", "service": "checkout-api",
                                                     "category": "data-integrity", "severity": "SEV2"}), 201)
    iid = declared["incident_id"]
    assert declared["regulated"] is True and declared["declared"] is True
    _ok(client_for("observability-engineer").post(
        f"/v1/incidents/{iid}/evidence", json={"title": "query plan", "content": "Seq Scan on orders"}))
    too_big = admin.post(f"/v1/incidents/{iid}/evidence", json={"title": "dump", "content": "x" * 5000})
    assert too_big.status_code == 409 and "larger than" in too_big.json()["error"]
    assert client_for("observability-engineer").post(f"/v1/incidents/{iid}/resolve").status_code == 403
    bundle = _ok(client_for("compliance-officer").get(f"/v1/incidents/{iid}/export"))
    assert bundle["incident"]["incident_id"] == iid
    assert bundle["evidence"][0]["content"] == "Seq Scan on orders"
    assert [e["type"] for e in bundle["audit_events"]][0] == "incident.opened"
    assert client_for("observability-engineer").get(f"/v1/incidents/{iid}/export").status_code == 403
