"""Storm safety at the sender: the shipped defaults never throttle a storm away, and a
throttled webhook answers what Alertmanager retries (503 with Retry-After), not the 429
it drops the group on.

``am-storm`` (tests/integration/organisation.yaml) sets no rate limit, so it has the
code default; ``am-throttled`` allows 3 alerts a minute.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from alertmanager_process import AlertmanagerProcess
from harness import read_topic, sql, wait_until
from integration_keys import create_key
from pipeline_lag import consumer_lag

GROUP = 2000


def _webhook(alertname: str, instances: range, status: str = "firing") -> dict:
    alerts = [{"status": status, "labels": {"alertname": alertname, "app": "billing-worker", "squad": "payments",
                                            "level": "critical", "instance": f"host-{n}"},
               "annotations": {"summary": f"{alertname} on host-{n}"}, "startsAt": "2026-11-27T09:00:00Z",
               "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{alertname}-{n}"} for n in instances]
    return {"version": "4", "status": status, "receiver": "incidents", "groupKey": f"{{}}:{alertname}",
            "groupLabels": {"alertname": alertname}, "commonLabels": {"alertname": alertname}, "alerts": alerts}


def _on_the_log(alertname: str, expected: int, timeout: float = 60.0) -> list[dict]:
    return read_topic("alerts.intake", lambda m: m.get("labels", {}).get("alertname") == alertname,
                      until=lambda found: len({m["dedup_key"] for m in found}) >= expected, timeout=timeout)


@pytest.fixture(scope="module")
def throttled(platform) -> httpx.Client:
    return httpx.Client(base_url=platform.api_url, timeout=30,
                        headers={"Authorization": f"Bearer {create_key('am-throttled')}"})


def test_a_throttled_webhook_answers_503_with_retry_after_and_publishes_nothing_refused(throttled, unique):
    alertname = f"Throttled{unique}"
    accepted = throttled.post("/v1/integrations/alertmanager", json=_webhook(alertname, range(3)))
    assert accepted.status_code == 202, accepted.text

    for body in (_webhook(alertname, range(3, 4)), {**_webhook(alertname, range(4, 5)), "orgId": 1}):  # and Grafana
        refused = throttled.post("/v1/integrations/alertmanager", json=body)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "rate limit of integration 'am-throttled'" in refused.json()["error"]

    # The native API throttles as PagerDuty and Opsgenie do.
    native = throttled.post("/v1/alerts", json={"service": "billing-worker", "summary": f"{alertname} native"})
    assert native.status_code == 429 and int(native.headers["Retry-After"]) >= 1

    seen = _on_the_log(alertname, 3)
    assert sorted(m["dedup_key"] for m in seen) == [f"{alertname}-{n}" for n in range(3)]


@pytest.fixture(scope="module")
def storm_alertmanager(platform, tmp_path_factory):
    """A real Alertmanager whose webhook receiver points at us with an ``am-storm`` key."""
    config = {
        # Alertmanager takes a posted list into its group over several seconds (its first flush
        # at group_wait was seen to hold 14 of the 2,000): a short group_interval sends the
        # whole group soon after, as a real Alertmanager under a storm would.
        "route": {"receiver": "incidents", "group_by": ["alertname"], "group_wait": "5s", "group_interval": "5s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "incidents", "webhook_configs": [{
            "url": f"{platform.api_url}/v1/integrations/alertmanager", "send_resolved": True,
            "http_config": {"authorization": {"type": "Bearer", "credentials": create_key("am-storm")}},
        }]}],
    }
    port = 19394 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
    process = AlertmanagerProcess(tmp_path_factory.mktemp("alertmanager-storm"), port, config,
                                  log=platform.logs / "alertmanager-storm.log")
    try:
        yield process.start()
    finally:
        process.stop()


def test_an_alertmanager_group_of_2000_alerts_gets_every_alert_in(platform, storm_alertmanager, unique):
    alertname = f"FleetDown{unique}"
    now = datetime.now(timezone.utc)
    alerts = [{"labels": {"alertname": alertname, "app": "billing-worker", "squad": "payments", "level": "critical",
                          "instance": f"host-{n}"},
               "annotations": {"summary": f"{alertname}: host down"},
               "startsAt": (now - timedelta(minutes=5)).isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
              for n in range(GROUP)]
    posted = httpx.post(f"{storm_alertmanager}/api/v2/alerts", json=alerts, timeout=60)
    assert posted.status_code == 200, posted.text

    # Alertmanager flushes the group (the last flush holds all 2,000); every one is on the log.
    seen = _on_the_log(alertname, GROUP, timeout=120)
    assert len({m["dedup_key"] for m in seen}) == GROUP
    assert {m["labels"]["instance"] for m in seen} == {f"host-{n}" for n in range(GROUP)}
    assert {m["integration"] for m in seen} == {"am-storm"}

    # And recorded, counted exactly, on one incident.
    def recorded():
        rows = sql("SELECT incident_id, alert_count FROM incidents WHERE record->'labels'->>'alertname' = $1",
                   alertname)
        return rows if sum(r["alert_count"] for r in rows) >= GROUP else None

    wait_until(recorded, timeout=600, interval=1.0, what=f"the {GROUP} alerts recorded on their incident")
    # Every consumer has digested the group, so the tests after this one do not queue behind it.
    prefix = platform.env["APP_PREFIX"]
    wait_until(lambda: not any(consumer_lag(prefix).values()), timeout=600, interval=1.0,
               what="every consumer group to catch up with the group's 2,000 alerts")
    # Counted exactly: one per delivery on the log (Alertmanager may flush an alert twice).
    delivered = _on_the_log(alertname, GROUP)
    assert [r["alert_count"] for r in recorded()] == [len(delivered)]
