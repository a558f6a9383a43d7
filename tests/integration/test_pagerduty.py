"""PagerDuty Events API v2 at /v2/enqueue: PagerDuty's documented events and answers, end to end."""
from __future__ import annotations

import json

import httpx
import pytest

from harness import sql, wait_until
from integration_keys import create_key

INTEGRATION = "pd-monitoring"  # organisation.yaml: default_service checkout-api
THROTTLED = "pd-throttled"  # organisation.yaml: 3 alerts per minute


@pytest.fixture(scope="module")
def routing_key(platform) -> str:
    return create_key(INTEGRATION)


@pytest.fixture(scope="module")
def enqueue(platform):
    client = httpx.Client(base_url=platform.api_url, timeout=30)  # no Authorization: routing_key is the credential
    return lambda event, **kw: client.post("/v2/enqueue", **({"json": event} if event is not None else {}), **kw)


def _trigger(routing_key: str, unique: str, dedup_key: str | None = "srv01/HTTP") -> dict:
    """PagerDuty's documented example trigger, made unique for this test."""
    event = {
        "payload": {
            "summary": f"Example alert on host1.example.com {unique}",
            "timestamp": "2015-07-17T08:42:58.315+0000",
            "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
            "severity": "critical",
            "component": "postgres",
            "group": "prod-datapipe",
            "class": f"deploy-{unique}",
            "custom_details": {"ping time": "1500ms", "load avg": 0.75},
        },
        "routing_key": routing_key,
        "images": [{"src": "https://www.pagerduty.com/logo.png", "href": "https://example.com/", "alt": "Example"}],
        "links": [{"href": "https://example.com/", "text": "Link text"}],
        "event_action": "trigger",
        "client": "Sample Monitoring Service",
        "client_url": "https://monitoring.example.com",
    }
    if dedup_key is not None:
        event["dedup_key"] = f"{dedup_key}-{unique}"
    return event


def _incident_with(dedup_key: str, integration: str = INTEGRATION) -> dict | None:
    rows = sql("SELECT i.incident_id, i.status, i.service FROM incidents i JOIN incident_alerts a USING (incident_id)"
               " WHERE a.fingerprint = $1", f"pd:{integration}:{dedup_key}")
    return rows[0] if rows else None


def _status(dedup_key: str, status: str):
    return lambda: (found := _incident_with(dedup_key)) is not None and found["status"] == status and found


def test_trigger_acknowledge_resolve_by_dedup_key(routing_key, enqueue, admin, unique):
    triggered = enqueue(_trigger(routing_key, unique))
    assert triggered.status_code == 202
    key = f"srv01/HTTP-{unique}"
    assert triggered.json() == {"status": "success", "message": "Event processed", "dedup_key": key}

    found = wait_until(_status(key, "triggered"), what="the incident the trigger opened")
    incident = admin.get(f"/v1/incidents/{found['incident_id']}").json()
    # "postgres" is no configured service: the routing key's default service owns it.
    assert (incident["service"], incident["team"]) == ("checkout-api", "payments")
    assert incident["severity"] == "SEV1"  # critical on a tier-1 service
    assert incident["title"] == f"Example alert on host1.example.com {unique}"

    # PagerDuty's documented acknowledge and resolve: the key alone, no payload.
    ack = enqueue({"routing_key": routing_key, "dedup_key": key, "event_action": "acknowledge"})
    assert ack.status_code == 202 and ack.json()["dedup_key"] == key
    wait_until(_status(key, "acknowledged"), what="the acknowledge by key")
    resolve = enqueue({"routing_key": routing_key, "dedup_key": key, "event_action": "resolve"})
    assert resolve.status_code == 202 and resolve.json()["dedup_key"] == key
    resolved = wait_until(_status(key, "resolved"), what="the resolve by key")
    assert resolved["incident_id"] == found["incident_id"]


def test_trigger_without_dedup_key_gets_one_that_resolves_it(routing_key, enqueue, unique):
    triggered = enqueue(_trigger(routing_key, unique, dedup_key=None))
    assert triggered.status_code == 202
    key = triggered.json()["dedup_key"]
    assert len(key) == 32
    wait_until(_status(key, "triggered"), what="the incident under the generated key")
    assert enqueue({"routing_key": routing_key, "dedup_key": key, "event_action": "resolve"}).status_code == 202
    wait_until(_status(key, "resolved"), what="the resolve with the generated key")


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda e: e.pop("routing_key"), "routing_key"),
        (lambda e: e.update(event_action="escalate"), "event_action"),
        (lambda e: e.pop("payload"), "payload"),
        (lambda e: e["payload"].update(severity="fatal"), "payload.severity"),
        (lambda e: e["payload"].pop("source"), "payload.source"),
        (lambda e: e.update(event_action="resolve", dedup_key=None), "dedup_key"),
        (lambda e: e.update(routing_key="f" * 32), "routing_key"),
    ],
)
def test_invalid_events_answer_like_pagerduty(routing_key, enqueue, unique, change, field):
    event = _trigger(routing_key, unique)
    change(event)
    refused = enqueue(event)
    assert refused.status_code == 400
    body = refused.json()
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert any(error.startswith(field) for error in body["errors"]), body["errors"]


def test_not_json_is_an_invalid_event(enqueue, platform):
    refused = httpx.post(f"{platform.api_url}/v2/enqueue", content=b"{routing_key", timeout=10)
    assert refused.status_code == 400 and refused.json()["status"] == "invalid event"


def test_whole_event_at_most_512_kb(routing_key, enqueue, unique):
    event = _trigger(routing_key, unique)
    event["payload"]["custom_details"] = {"blob": ""}

    def encoded() -> bytes:
        return json.dumps(event).encode()

    event["payload"]["custom_details"]["blob"] = "x" * (512 * 1024 - len(encoded()))
    assert len(encoded()) == 512 * 1024
    headers = {"Content-Type": "application/json"}
    assert enqueue(None, content=encoded(), headers=headers).status_code == 202
    event["payload"]["custom_details"]["blob"] += "x"
    too_large = enqueue(None, content=encoded(), headers=headers)
    assert too_large.status_code == 413
    assert too_large.json()["status"] == "invalid event" and "512 KB" in too_large.json()["errors"][0]


def test_an_integration_over_its_rate_is_throttled_with_retry_after(platform, enqueue, unique):
    key = create_key(THROTTLED)
    answers = [enqueue(_trigger(key, f"{unique}-{n}")) for n in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    throttled = answers[-1]
    assert throttled.json()["status"] == "throttle event"
    assert int(throttled.headers["Retry-After"]) >= 1
    # Other integrations are not affected by this one's limit.
    assert enqueue(_trigger(create_key(INTEGRATION), f"{unique}-other")).status_code == 202


def test_a_timestamp_in_the_future_does_not_move_detection_past_resolution(routing_key, enqueue, admin, unique):
    event = _trigger(routing_key, unique)
    event["payload"]["timestamp"] = "2999-01-01T00:00:00Z"  # a sender with a broken clock
    assert enqueue(event).status_code == 202
    key = event["dedup_key"]
    found = wait_until(_status(key, "triggered"), what="the incident from the skewed sender")
    assert enqueue({"routing_key": routing_key, "dedup_key": key, "event_action": "resolve"}).status_code == 202
    wait_until(_status(key, "resolved"), what="its resolution")
    incident = admin.get(f"/v1/incidents/{found['incident_id']}").json()
    assert incident["detected_at"] <= incident["opened_at"]
    assert incident["mttr_minutes"] >= 0
