"""Heartbeats end to end: pinged three ways, a missed beat opens an incident, the next ping resolves it,
the deadline survives a SIGKILL of the escalation service, and a real Alertmanager's Watchdog keeps one alive.

Each test has its own heartbeat in tests/integration/organisation.yaml (seconds, not minutes).
"""
from __future__ import annotations

import json
import re
import signal
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alertmanager_process import running
from harness import read_topic, sql, wait_until
from integration_keys import create_key


def _incident(name: str) -> dict | None:
    rows = sql("SELECT incident_id, status, title, service, team, severity, opened_at, detected_at FROM incidents"
               " WHERE incident_id IN (SELECT incident_id FROM incident_alerts WHERE fingerprint = $1)"
               " ORDER BY opened_at DESC", f"heartbeat:{name}")
    return rows[0] if rows else None


def _pings(name: str, until=None, timeout: float = 20.0) -> list[dict]:
    return read_topic("heartbeats.pings", lambda m: m["name"] == name, until=until, timeout=timeout)


def _at(message: dict) -> datetime:
    return datetime.fromisoformat(message["at"])


def test_a_heartbeat_is_pinged_by_our_url_by_opsgenies_and_refuses_strangers(platform, intake, tokens):
    name = "metrics-beat"
    assert intake.get(f"/v1/heartbeats/{name}/ping").json()["status"] == "accepted"
    posted = intake.post(f"/v1/heartbeats/{name}/ping", json={"anything": "goes"})
    assert posted.status_code == 202 and posted.json()["status"] == "accepted"
    resolved_only = {"version": "4", "status": "resolved", "alerts": [{"status": "resolved", "labels": {}}]}
    ignored = intake.post(f"/v1/heartbeats/{name}/ping", json=resolved_only)
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"

    genie = {"Authorization": f"GenieKey {tokens['integration']}"}
    for method in ("GET", "POST", "PUT", "PATCH"):
        pong = httpx.request(method, f"{platform.api_url}/v2/heartbeats/{name}/ping", headers=genie, timeout=10)
        assert pong.status_code == 202, (method, pong.text)
        assert pong.json()["result"] == "PONG - Heartbeat received" and pong.json()["requestId"]
    # Two of ours and four of Opsgenie's; the resolved-only notification was not a beat.
    pings = _pings(name, until=lambda found: len(found) >= 6)
    assert len(pings) == 6
    assert {p["source"] for p in pings} == {f"/v1/heartbeats/{name}/ping", f"/v2/heartbeats/{name}/ping"}

    assert intake.get("/v1/heartbeats/no-such-beat/ping").status_code == 404
    assert httpx.get(f"{platform.api_url}/v2/heartbeats/no-such-beat/ping", headers=genie).status_code == 404
    assert httpx.get(f"{platform.api_url}/v1/heartbeats/{name}/ping").status_code == 401
    assert httpx.get(f"{platform.api_url}/v2/heartbeats/{name}/ping").status_code == 401
    user = {"Authorization": f"Bearer {tokens['observability-engineer']}"}
    assert httpx.get(f"{platform.api_url}/v1/heartbeats/{name}/ping", headers=user).status_code == 403

    def exported():
        text = httpx.get(platform.metrics_url, timeout=5).text
        return f'heartbeat_last_ping_age_seconds{{name="{name}"}}' in text and text
    text = wait_until(exported, what="the heartbeat's age on /metrics")
    assert f'heartbeat_timeout_seconds{{name="{name}"}} 3600.0' in text


def test_a_missed_beat_opens_an_incident_and_the_next_ping_resolves_it(intake, admin):
    name = "nightly-backup"  # 2s interval + 1s grace, SEV2, billing-worker (payments)
    assert intake.post(f"/v1/heartbeats/{name}/ping").status_code == 202
    (ping,) = _pings(name, until=lambda found: len(found) >= 1)
    incident = wait_until(lambda: _incident(name), timeout=20, what="the missed beat's incident")
    assert re.fullmatch(rf"heartbeat `{name}` missing for [34]s", incident["title"]), incident["title"]
    assert (incident["service"], incident["team"], incident["severity"], incident["status"]) == \
        ("billing-worker", "payments", "SEV2", "triggered")
    silent = (incident["detected_at"] - _at(ping)).total_seconds()
    assert 3.0 <= silent < 3.5, f"detected {silent}s after the ping; interval + grace is 3s"

    assert intake.get(f"/v1/heartbeats/{name}/ping").status_code == 202
    wait_until(lambda: _incident(name)["status"] == "resolved", what="the next ping to resolve it")
    record = admin.get(f"/v1/incidents/{incident['incident_id']}").json()
    assert [ref["status"] for ref in record["alerts"]] == ["resolved"]
    assert record["classification_rule"] == f"heartbeat:{name}"


def test_the_deadline_survives_a_sigkill_of_the_escalation_service(platform, intake):
    name = "durable-beat"  # 3s + 1s
    assert intake.post(f"/v1/heartbeats/{name}/ping").status_code == 202
    (ping,) = _pings(name, until=lambda found: len(found) >= 1)
    # Wait until the escalation service has the ping in its table (the changelog), then kill it.
    changelog = "incident-test-escalation-heartbeats-changelog"
    wait_until(lambda: read_topic(changelog, lambda m: m.get("last_ping") is not None and m["_key"] == json.dumps(name),
                                  timeout=1), what="the ping in the heartbeat table")
    platform.restart("escalation", signal.SIGKILL)
    incident = wait_until(lambda: _incident(name), timeout=30, what="the missed beat's incident after the restart")
    assert (incident["detected_at"] - _at(ping)).total_seconds() >= 4.0
    assert incident["severity"] == "SEV3"


def test_alertmanager_watchdog_keeps_the_heartbeat_alive_and_its_silence_opens_the_incident(platform, tmp_path_factory):
    name = "am-watchdog"  # 2s + 2s, SEV4
    key = create_key("alertmanager-watchdog")
    config = {
        "route": {
            "receiver": "default", "group_by": ["alertname"],
            "routes": [{"receiver": "heartbeat", "matchers": ['alertname="Watchdog"'],
                        "group_wait": "0s", "group_interval": "1s", "repeat_interval": "1s"}],
        },
        "receivers": [
            {"name": "default"},
            {"name": "heartbeat", "webhook_configs": [{
                "url": f"{platform.api_url}/v1/heartbeats/{name}/ping", "send_resolved": False,
                "http_config": {"authorization": {"type": "Bearer", "credentials": key}},
            }]},
        ],
    }
    now = datetime.now(timezone.utc)
    home = tmp_path_factory.mktemp("alertmanager-watchdog")
    with running(config, home, 19395, platform.logs / "alertmanager-watchdog.log") as manager:
        # The standard always-firing Watchdog alert, as Prometheus sends it.
        manager.post({"alertname": "Watchdog", "severity": "none"}, {"summary": "The alerting pipeline works"},
                     now, now + timedelta(hours=1))
        # Beats for longer than interval + grace: the heartbeat stays alive.
        pings = _pings(name, until=lambda found: len(found) >= 2 and (_at(found[-1]) - _at(found[0])).total_seconds() > 6,
                       timeout=30)
        assert (_at(pings[-1]) - _at(pings[0])).total_seconds() > 6
        assert {p["integration"] for p in pings} == {"alertmanager-watchdog"}
        assert _incident(name) is None, "no incident while Alertmanager delivers the Watchdog"
        stopped = time.monotonic()
        stopped_at = datetime.now(timezone.utc)
    incident = wait_until(lambda: _incident(name), timeout=20, what="the heartbeat incident after Alertmanager stops")
    waited = time.monotonic() - stopped
    assert waited <= 4.0 + 2.0, f"opened {waited:.1f}s after Alertmanager stopped; interval + grace is 4s"
    last = max(_at(p) for p in _pings(name))
    assert last <= stopped_at
    assert (incident["detected_at"] - last).total_seconds() == pytest.approx(4.0, abs=0.5)
    assert incident["severity"] == "SEV4" and incident["status"] == "triggered"
