"""The platform's thin path, end to end on the real broker and database."""
from __future__ import annotations

import httpx

from harness import incident_for, read_topic, sql, wait_until


def test_alert_becomes_incident_visible_everywhere(platform, intake, admin, unique):
    alertname = f"CRMSyncFailing-{unique}"
    response = intake.post(
        "/v1/alerts",
        json={"service": "connector:CRM", "summary": "CRM sync failing", "severity": "critical",
              "labels": {"alertname": alertname}},
    )
    assert response.status_code == 202, response.text
    assert len(response.json()["dedup_keys"]) == 1

    incident = incident_for(admin, alertname)
    incident_id = incident["incident_id"]
    assert incident["service"] == "connector:CRM"
    assert incident["team"] == "integrations"
    assert incident["severity"] == "SEV1"
    assert incident["status"] == "triggered"
    assert incident["commander"] in ("alice", "bob", "carol")
    assert incident["timeline"][0]["type"] == "incident.opened"

    audit = read_topic("incident.audit", lambda m: m["incident_id"] == incident_id,
                       until=lambda found: any(m["type"] == "incident.opened" for m in found))
    opened = [m for m in audit if m["type"] == "incident.opened"]
    assert len(opened) == 1 and opened[0]["_key"] == incident_id
    assert {"event_id", "incident_id", "occurred_at", "actor"} <= set(opened[0])

    notes = read_topic("notifications.integrations", lambda m: m["incident_id"] == incident_id,
                       until=lambda found: any(m["kind"] == "opened" for m in found))
    assert any(m["kind"] == "opened" and "CRM sync failing" in m["text"] for m in notes)

    def counted() -> bool:
        text = httpx.get(platform.metrics_url, timeout=5).text
        return 'incidents_opened_total{service="connector:CRM",severity="SEV1"}' in text

    wait_until(counted, what="the opened incident on /metrics")
    rows = sql("SELECT status, service FROM incidents WHERE incident_id = $1", incident_id)
    assert rows == [{"status": "triggered", "service": "connector:CRM"}]


def test_malformed_alert_is_refused_naming_the_field_and_nothing_is_published(platform, intake, unique):
    marker = f"malformed-{unique}"
    response = intake.post("/v1/alerts", json={"summary": marker, "severity": "critical"})
    assert response.status_code == 400
    body = response.json()
    assert "service" in body["error"]
    assert any(d["field"] == "service" for d in body["detail"])

    bad_severity = intake.post("/v1/alerts", json={"service": "connector:CRM", "summary": marker, "severity": "loud"})
    assert bad_severity.status_code == 400
    assert "severity" in bad_severity.json()["error"]

    # All or nothing: one bad alert in a list refuses the whole request.
    mixed = intake.post("/v1/alerts", json=[{"service": "connector:CRM", "summary": marker}, {"summary": marker}])
    assert mixed.status_code == 400
    assert "1.service" in mixed.json()["error"]

    # A later good alert shows the intake topic is read to its end; none of the bad ones is there.
    good = intake.post("/v1/alerts", json={"service": "billing-worker", "summary": f"good-{unique}"})
    assert good.status_code == 202
    seen = read_topic("alerts.intake", lambda m: unique in m.get("summary", ""),
                      until=lambda found: any(m["summary"] == f"good-{unique}" for m in found))
    assert [m["summary"] for m in seen] == [f"good-{unique}"]


def test_credentials_and_roles_are_enforced(platform, client_for):
    anonymous = client_for(None)
    assert anonymous.get("/v1/incidents").status_code == 401
    assert anonymous.post("/v1/alerts", json={"service": "x", "summary": "y"}).status_code == 401
    bogus = httpx.Client(base_url=platform.api_url, headers={"Authorization": "Bearer nope"})
    assert bogus.get("/v1/incidents").status_code == 401

    integration = client_for("integration")
    assert integration.get("/v1/incidents").status_code == 403
    viewer = client_for("compliance-officer")
    assert viewer.post("/v1/alerts", json={"service": "x", "summary": "y"}).status_code == 403
    assert viewer.get("/v1/incidents").status_code == 200


def test_tokens_are_stored_hashed(platform, tokens):
    rows = sql("SELECT token_hash FROM api_tokens")
    stored = {row["token_hash"] for row in rows}
    assert stored, "tokens exist"
    for secret in tokens.values():
        assert secret not in stored
        assert all(secret not in h for h in stored)


def test_health_and_openapi(platform):
    assert httpx.get(f"{platform.api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{platform.api_url}/readyz")
    assert ready.status_code == 200 and ready.json()["kafka"] is True
    spec = httpx.get(f"{platform.api_url}/openapi.json").json()
    for path in ("/v1/alerts", "/v1/integrations/alertmanager", "/v2/enqueue", "/v1/incidents/{incident_id}"):
        assert path in spec["paths"]


def test_text_with_nul_characters_is_recorded_not_lost(platform, intake, admin, unique):
    # PostgreSQL text cannot store NUL; the record is kept with U+FFFD in its place.
    alertname = f"Nul-{unique}"
    response = intake.post("/v1/alerts", json={"service": "billing-worker", "summary": "bad\u0000byte",
                                               "labels": {"alertname": alertname}})
    assert response.status_code == 202
    incident = incident_for(admin, alertname)
    assert incident["title"] == "bad\ufffdbyte"
