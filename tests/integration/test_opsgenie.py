"""The Opsgenie-compatible Alert API: a real Alertmanager's opsgenie_configs, and Opsgenie's documented calls.

Alertmanager's Opsgenie receiver, with `api_url` pointing at the platform and the
integration key as `api_key`, creates the alert with an alias (a hash of the group key)
and closes it by alias when the group resolves: the incident opens, then resolves.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alertmanager_process import running
from harness import incident_for, sql, wait_until
from integration_keys import create_key

INTEGRATION = "opsgenie"  # organisation.yaml: the default priorities


@pytest.fixture(scope="module")
def genie_key(platform) -> str:
    return create_key(INTEGRATION)


@pytest.fixture(scope="module")
def genie(platform, genie_key) -> httpx.Client:
    return httpx.Client(base_url=platform.api_url, headers={"Authorization": f"GenieKey {genie_key}"}, timeout=30)


def _incident_by_alias(alias: str) -> dict | None:
    rows = sql("SELECT incident_id, status, service, severity FROM incidents WHERE incident_id IN "
               "(SELECT incident_id FROM incident_alerts WHERE fingerprint = $1) ORDER BY opened_at DESC",
               f"og:{INTEGRATION}:{alias}")
    return rows[0] if rows else None


def _status(alias: str, status: str):
    return lambda: (found := _incident_by_alias(alias)) is not None and found["status"] == status and found


def test_alertmanager_opsgenie_receiver_opens_and_its_resolution_closes_by_alias(platform, genie_key, admin,
                                                                                 tmp_path_factory, unique):
    config = {
        "global": {"resolve_timeout": "5s"},
        "route": {"receiver": "opsgenie", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{
            "name": "opsgenie",
            "opsgenie_configs": [{
                "api_key": genie_key,
                "api_url": f"{platform.api_url}/",  # Alertmanager appends v2/alerts
                "send_resolved": True,
                "message": "{{ .CommonAnnotations.summary }}",
                "priority": '{{ if eq .CommonLabels.severity "critical" }}P1{{ else }}P3{{ end }}',
                "tags": "billing,{{ .CommonLabels.alertname }}",
            }],
        }],
    }
    alertname = f"InvoiceQueueStuck{unique}"
    labels = {"alertname": alertname, "service": "billing-worker", "severity": "critical"}
    started = datetime.now(timezone.utc) - timedelta(minutes=2)
    home = tmp_path_factory.mktemp("alertmanager-opsgenie")
    with running(config, home, 19394, platform.logs / "alertmanager-opsgenie.log") as manager:
        manager.post(labels, {"summary": f"Invoices stuck {unique}"}, started, datetime.now(timezone.utc) + timedelta(hours=1))
        incident = incident_for(admin, alertname)
        (ref,) = incident["alerts"]
        alias = ref["dedup_key"].removeprefix(f"og:{INTEGRATION}:")
        assert len(alias) == 64, "Alertmanager's alias is a SHA-256 of the group key"
        assert (incident["service"], incident["team"], incident["status"]) == ("billing-worker", "payments", "triggered")
        assert incident["title"] == f"Invoices stuck {unique}"
        assert incident["labels"]["priority"] == "P1" and incident["labels"]["tags"] == f"billing,{alertname}"
        assert incident["source"] == "opsgenie"

        # The alert resolves in Alertmanager: it closes the Opsgenie alert by alias.
        manager.post(labels, {"summary": f"Invoices stuck {unique}"}, started, datetime.now(timezone.utc) - timedelta(seconds=1))
        resolved = wait_until(_status(alias, "resolved"), timeout=30, what="the close by alias to resolve the incident")
    assert resolved["incident_id"] == incident["incident_id"]
    record = admin.get(f"/v1/incidents/{incident['incident_id']}").json()
    (resolution,) = [entry for entry in record["timeline"] if entry["change"] == "resolved"]
    assert resolution["actor"] == f"monitoring:{INTEGRATION}", "resolved by its source, like any source's resolve"


def test_create_then_request_status_then_acknowledge_by_id_note_and_close(genie, admin, unique):
    alias = f"disk-full-{unique}"
    created = genie.post("/v2/alerts", json={
        "message": f"Disk full on db-1 {unique}", "alias": alias, "description": "95% used",
        "priority": "P2", "entity": "checkout-api", "details": {"alertname": f"DiskFull{unique}", "host": "db-1"},
        "responders": [{"name": "payments", "type": "team"}], "tags": ["disk"], "user": "nagios",
    })
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["result"] == "Request will be processed" and isinstance(body["took"], float)
    request_id = body["requestId"]

    def processed():
        answer = genie.get(f"/v2/alerts/requests/{request_id}")
        return answer.json() if answer.status_code == 200 else None

    status = wait_until(processed, what="the create request to be processed")["data"]
    assert (status["action"], status["isSuccess"], status["status"], status["alias"]) == \
        ("Create", True, "Created alert", alias)
    assert status["integrationId"] == INTEGRATION
    incident_id = status["incidentId"]
    incident = admin.get(f"/v1/incidents/{incident_id}").json()
    # P2 is "error" by the default priorities; error on a tier-1 service is SEV2 by the severity rules.
    assert (incident["service"], incident["severity"]) == ("checkout-api", "SEV2")
    assert incident["annotations"]["description"] == "95% used"

    acked = genie.post(f"/v2/alerts/{status['alertId']}/acknowledge", json={"user": "alice", "note": "on it"})
    assert acked.status_code == 202
    wait_until(_status(alias, "acknowledged"), what="the acknowledge by id")
    ack_status = wait_until(lambda: (r := genie.get(f"/v2/alerts/requests/{acked.json()['requestId']}")).status_code
                            == 200 and r.json(), what="the acknowledge's request status")["data"]
    assert ack_status["action"] == "Acknowledge" and ack_status["incidentId"] == incident_id

    noted = genie.post(f"/v2/alerts/{alias}/notes", params={"identifierType": "alias"},
                       json={"note": "Rotated the logs", "user": "alice"})
    assert noted.status_code == 202
    note_status = wait_until(lambda: (r := genie.get(f"/v2/alerts/requests/{noted.json()['requestId']}")).status_code
                             == 200 and r.json(), what="the note's request status")["data"]
    assert (note_status["action"], note_status["isSuccess"]) == ("AddNote", True)
    log = admin.get(f"/v1/incidents/{incident_id}").json()["communication_log"]
    assert any(entry["text"] == "Note from alice: Rotated the logs" for entry in log)

    closed = genie.post(f"/v2/alerts/{alias}/close", params={"identifierType": "alias"})  # no body at all
    assert closed.status_code == 202
    wait_until(_status(alias, "resolved"), what="the close by alias")


def test_refusals_answer_like_opsgenie_and_name_the_problem(platform, genie, tokens, unique):
    invalid = genie.post("/v2/alerts", json={"alias": "no-message"})
    assert invalid.status_code == 400
    assert "message" in invalid.json()["errors"] and invalid.json()["requestId"]
    assert genie.post("/v2/alerts", json={"message": "m", "priority": "P9"}).json()["errors"].keys() == {"priority"}
    assert genie.post("/v2/alerts", content=b"{not json").status_code == 400
    tiny = genie.post("/v2/alerts/1905/close", params={"identifierType": "tiny"})
    assert tiny.status_code == 400 and "identifierType" in tiny.json()["errors"]
    assert genie.post("/v2/alerts/not-one-of-ours!/close").status_code == 404
    note = genie.post(f"/v2/alerts/never-sent-{unique}/notes", params={"identifierType": "alias"}, json={"note": "x"})
    assert note.status_code == 404
    assert genie.get("/v2/alerts/requests/8743a1b2-11da-480e-8493-744660987bef").status_code == 404

    anonymous = httpx.post(f"{platform.api_url}/v2/alerts", json={"message": "m"})
    assert anonymous.status_code == 401 and anonymous.json()["message"].startswith("Could not authenticate")
    wrong = httpx.post(f"{platform.api_url}/v2/alerts", json={"message": "m"},
                       headers={"Authorization": "GenieKey eb243592-faa2-4ba2-a551q-1afdf565c889"})
    assert wrong.status_code == 401
    user = httpx.post(f"{platform.api_url}/v2/alerts", json={"message": "m"},
                      headers={"Authorization": f"GenieKey {tokens['platform-admin']}"})
    assert user.status_code == 403


def test_request_status_is_private_to_the_integration_that_sent_it(platform, genie, unique):
    created = genie.post("/v2/alerts", json={"message": f"private {unique}", "alias": f"private-{unique}",
                                             "entity": "billing-worker"})
    request_id = created.json()["requestId"]
    wait_until(lambda: genie.get(f"/v2/alerts/requests/{request_id}").status_code == 200, what="the request")
    other = httpx.get(f"{platform.api_url}/v2/alerts/requests/{request_id}",
                      headers={"Authorization": f"GenieKey {create_key('opsgenie-other')}"})
    assert other.status_code == 404
