"""A real Prometheus Alertmanager, with a webhook and a PagerDuty receiver, pages the platform.

Alertmanager (Debian's prometheus-alertmanager) runs with its own flags, data
directory and loopback port; both receivers carry the same integration key, so
the two deliveries of one alert group fold into one incident. Alerts are posted
to Alertmanager's own API and resolved there (endsAt in the past).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alertmanager_process import running
from harness import sql, wait_until
from integration_keys import create_key

INTEGRATION = "prometheus"  # organisation.yaml: label names app / squad / level
STARTED = datetime.now(timezone.utc) - timedelta(minutes=5)


def _config(api_url: str, key: str) -> dict:
    return {
        "global": {"resolve_timeout": "5s"},
        "route": {
            "receiver": "incidents-webhook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [
                {"receiver": "incidents-webhook", "continue": True},
                {"receiver": "incidents-pagerduty"},
            ],
        },
        "receivers": [
            {
                "name": "incidents-webhook",
                "webhook_configs": [{
                    "url": f"{api_url}/v1/integrations/alertmanager",
                    "send_resolved": True,
                    "http_config": {"authorization": {"type": "Bearer", "credentials": key}},
                }],
            },
            {
                "name": "incidents-pagerduty",
                "pagerduty_configs": [{
                    "url": f"{api_url}/v2/enqueue",
                    "routing_key": key,
                    "send_resolved": True,
                    # The same service and alert name as the webhook's labels: one correlation key.
                    "component": "{{ .CommonLabels.app }}",
                    "class": "{{ .CommonLabels.alertname }}",
                    "severity": "{{ .CommonLabels.level }}",
                    "description": "{{ .CommonAnnotations.summary }}",
                    "details": {
                        "alertname": "{{ .CommonLabels.alertname }}",
                        "description": "{{ .CommonAnnotations.description }}",
                        "runbook_url": "{{ .CommonAnnotations.runbook_url }}",
                    },
                }],
            },
        ],
    }


@pytest.fixture(scope="module")
def alertmanager(platform, tmp_path_factory):
    """A running Alertmanager aimed at the platform's ingestion; stopped by its PID."""
    key = create_key(INTEGRATION)
    home = tmp_path_factory.mktemp("alertmanager")
    with running(_config(platform.api_url, key), home, 19393, platform.logs / "alertmanager.log") as manager:
        yield manager.url


def _post(am_url: str, alertname: str, instance: str, ends_at: datetime) -> None:
    alert = {
        "labels": {"alertname": alertname, "app": "billing-worker", "squad": "payments", "level": "critical",
                   "instance": instance},
        "annotations": {"summary": f"{alertname}: invoices stuck", "description": "No invoice for 10 minutes",
                        "runbook_url": "https://runbooks.example.com/billing/stuck"},
        # As Prometheus sends them: the start, and an end that keeps the alert firing until the
        # test resolves it (not resolve_timeout).
        "startsAt": STARTED.isoformat(),
        "endsAt": ends_at.isoformat(),
    }
    response = httpx.post(f"{am_url}/api/v2/alerts", json=[alert], timeout=10)
    assert response.status_code == 200, response.text


def _incidents(alertname: str) -> list[dict]:
    return sql("SELECT incident_id, status FROM incidents WHERE record->'labels'->>'alertname' = $1", alertname)


def _fingerprints(am_url: str, alertname: str) -> dict[str, str]:
    alerts = httpx.get(f"{am_url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}, timeout=10).json()
    return {a["labels"]["instance"]: a["fingerprint"] for a in alerts}


def test_alertmanager_webhook_and_pagerduty_receivers_open_and_resolve_one_incident(alertmanager, admin, unique):
    alertname = f"InvoicesStuck{unique}"
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    _post(alertmanager, alertname, "worker-1", later)
    _post(alertmanager, alertname, "worker-2", later)
    prints = wait_until(lambda: (found := _fingerprints(alertmanager, alertname)) and len(found) == 2 and found,
                        what="both alerts in alertmanager")

    # Both receivers deliver: the webhook's two fingerprints and PagerDuty's group key, one incident.
    def delivered():
        found = _incidents(alertname)
        if len(found) != 1:
            return None
        record = admin.get(f"/v1/incidents/{found[0]['incident_id']}").json()
        keys = {ref["dedup_key"] for ref in record["alerts"]}
        return record if len(keys) == 3 else None

    incident = wait_until(delivered, timeout=30, what="the webhook and PagerDuty deliveries on one incident")
    keys = {ref["dedup_key"] for ref in incident["alerts"]}
    assert set(prints.values()) < keys, "the webhook keeps Alertmanager's fingerprints as dedup keys"
    (pd_key,) = keys - set(prints.values())
    assert pd_key.startswith(f"pd:{INTEGRATION}:") and len(pd_key.rsplit(":", 1)[1]) == 64
    assert len(_incidents(alertname)) == 1
    assert incident["status"] == "triggered"
    assert (incident["service"], incident["team"]) == ("billing-worker", "payments")
    assert incident["title"] == f"{alertname}: invoices stuck"
    assert incident["annotations"]["description"] == "No invoice for 10 minutes"
    assert incident["playbook"]["runbook_url"] == "https://runbooks.example.com/billing/stuck"
    incident_id = incident["incident_id"]

    # One alert of the group resolves: Alertmanager sends a "firing" group holding a resolved alert.
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    _post(alertmanager, alertname, "worker-1", past)

    def worker_1_resolved():
        record = admin.get(f"/v1/incidents/{incident_id}").json()
        refs = {ref["dedup_key"]: ref["status"] for ref in record["alerts"]}
        return record if refs[prints["worker-1"]] == "resolved" else None

    record = wait_until(worker_1_resolved, timeout=30, what="worker-1 resolved on the incident")
    refs = {ref["dedup_key"]: ref["status"] for ref in record["alerts"]}
    assert refs[prints["worker-2"]] == "firing"
    assert record["status"] == "triggered", "the incident stays open while worker-2 fires"

    # The rest of the group resolves: both receivers send resolved, the incident resolves.
    _post(alertmanager, alertname, "worker-2", past)

    def resolved():
        record = admin.get(f"/v1/incidents/{incident_id}").json()
        return record if record["status"] == "resolved" else None

    record = wait_until(resolved, timeout=30, what="the incident to resolve")
    assert {ref["status"] for ref in record["alerts"]} == {"resolved"}
    # Detection comes from whichever delivery opened the incident (Alertmanager's PagerDuty events
    # carry no start time): never after the resolution, whichever it was.
    assert record["mttr_minutes"] >= 0
    assert _incidents(alertname) == [{"incident_id": incident_id, "status": "resolved"}]


@pytest.fixture(scope="module")
def prometheus_key(platform) -> httpx.Client:
    return httpx.Client(base_url=platform.api_url, timeout=30,
                        headers={"Authorization": f"Bearer {create_key(INTEGRATION)}"})


def _grafana(alertname: str, status: str) -> dict:
    alert = {
        "status": status,
        "labels": {"alertname": alertname, "app": "checkout-api", "level": "warning", "grafana_folder": "Payments"},
        "annotations": {"summary": "Checkout latency high", "description": "p99 above 2s",
                        "runbook_url": "https://runbooks.example.com/checkout/latency"},
        "startsAt": "2026-11-27T09:51:03.157076+02:00",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(timezone.utc).isoformat(),
        "generatorURL": "https://grafana.example.com/alerting/grafana/abc/view",
        "fingerprint": hashlib.sha256(alertname.encode()).hexdigest()[:16],
        "silenceURL": "https://grafana.example.com/alerting/silence/new",
        "dashboardURL": "https://grafana.example.com/d/checkout", "panelURL": "",
        "values": {"B": 2.4, "C": 1}, "valueString": "[ var='B' value=2.4 ]",
    }
    return {"receiver": "incidents", "status": status, "orgId": 1, "alerts": [alert], "groupLabels": {},
            "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
            "externalURL": "https://grafana.example.com/", "version": "1", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "title": f"[{status.upper()}:1] {alertname}", "state": "alerting", "message": "**Firing**"}


def test_grafana_alerting_webhook_on_the_same_endpoint(prometheus_key, admin, unique):
    alertname = f"CheckoutLatency{unique}"
    fired = prometheus_key.post("/v1/integrations/alertmanager", json=_grafana(alertname, "firing"))
    assert fired.status_code == 202, fired.text
    (dedup_key,) = fired.json()["dedup_keys"]
    assert dedup_key == _grafana(alertname, "firing")["alerts"][0]["fingerprint"]

    found = wait_until(lambda: _incidents(alertname), what="the Grafana incident")
    incident = admin.get(f"/v1/incidents/{found[0]['incident_id']}").json()
    assert (incident["service"], incident["team"], incident["title"]) == ("checkout-api", "payments",
                                                                           "Checkout latency high")
    assert incident["source"] == "grafana"
    assert {link["text"] for link in incident["links"]} >= {"source", "runbook", "dashboard", "silence"}

    resolved = prometheus_key.post("/v1/integrations/alertmanager", json=_grafana(alertname, "resolved"))
    assert resolved.status_code == 202
    wait_until(lambda: _incidents(alertname)[0]["status"] == "resolved", what="the Grafana incident to resolve")


def test_invalid_webhooks_are_refused_naming_the_field(platform, prometheus_key, admin, unique):
    body = _grafana(f"Bad{unique}", "firing")
    body["alerts"][0]["status"] = "pending"
    refused = prometheus_key.post("/v1/integrations/alertmanager", json=body)
    assert refused.status_code == 400
    assert "alerts.0.status" in refused.json()["error"]
    assert prometheus_key.post("/v1/integrations/alertmanager", content=b"{not json").status_code == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert prometheus_key.post("/v1/integrations/alertmanager", content=deep).status_code == 400
    assert prometheus_key.post("/v1/alerts", content=deep).status_code == 400
    assert httpx.post(f"{platform.api_url}/v1/integrations/alertmanager", json=body).status_code == 401
    assert admin.post("/v1/integrations/alertmanager", json=body).status_code == 403
