"""Alerts produced straight onto the intake topic, and poison messages on every path."""
from __future__ import annotations

import json

import httpx

from harness import incident_for, produce, read_topic, wait_until


def test_a_native_alert_produced_onto_the_intake_topic_opens_an_incident(platform, admin, unique):
    alertname = f"FromKafka-{unique}"
    body = {"service": "billing-worker", "summary": "queue depth high", "severity": "warning",
            "labels": {"alertname": alertname}}
    produce("alerts.intake", [(None, json.dumps(body).encode())])
    incident = incident_for(admin, alertname)
    assert incident["service"] == "billing-worker" and incident["alert_count"] == 1
    assert incident["timeline"][0]["actor"] == "monitoring:kafka"


def _rejected(platform) -> float | None:
    """alerts_rejected_total summed over reasons; None while /metrics is not serving (recovering)."""
    response = httpx.get(platform.metrics_url, timeout=5)
    if response.status_code != 200:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in response.text.splitlines()
               if line.startswith("alerts_rejected_total{"))


def test_poison_goes_to_the_dead_letter_topic_with_the_reason_and_nothing_stops(platform, admin, unique):
    before = wait_until(lambda: (lambda v: (v,) if v is not None else None)(_rejected(platform)),
                        what="the metrics service")[0]
    produce("alerts.intake", [
        (f"garbage-{unique}", b"\xff not json"),
        (f"noservice-{unique}", json.dumps({"summary": f"no service {unique}"}).encode()),
    ])
    produce("incident.commands", [(f"INC-2000-01-01-{unique[:3]}", json.dumps({"command": "nonsense"}).encode())])
    letters = read_topic("dead-letter", lambda m: unique in (m.get("key") or "") or unique[:3] in (m.get("key") or ""),
                         until=lambda found: len(found) >= 3)
    by_key = {m["key"]: m for m in letters}
    assert by_key[f"garbage-{unique}"]["source_topic"] == "alerts.intake"
    assert by_key[f"garbage-{unique}"]["reason"].startswith("invalid message")
    assert "service" in by_key[f"noservice-{unique}"]["reason"]
    assert any(m["source_topic"] == "incident.commands" for m in letters)
    for letter in letters:
        assert letter["service"] and letter["offset"] is not None and letter["payload"]
    wait_until(lambda: (_rejected(platform) or 0) >= before + 2, what="alerts_rejected_total to count both")

    # The agents carried on: a good alert right behind the poison still opens its incident.
    alertname = f"AfterPoison-{unique}"
    produce("alerts.intake", [(None, json.dumps({"service": "billing-worker", "summary": "still alive",
                                                 "labels": {"alertname": alertname}}).encode())])
    assert incident_for(admin, alertname)["status"] == "triggered"
