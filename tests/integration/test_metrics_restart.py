"""The metrics service's numbers are durable and exact: a restart (graceful or killed) recovers
them from the Faust table changelogs unchanged, redelivered messages count nothing twice, and
every number equals what SQL over PostgreSQL's records gives."""
from __future__ import annotations

import signal
from datetime import timedelta

from harness import read_topic, sql, wait_until
from metrics_queries import close_enough, differences, exported, incident_id_for, now, reproduce, scrape, wait_for_agreement


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


def test_numbers_survive_restarts_and_equal_postgresql(platform, intake, admin, unique):
    # Something of every kind, so no number is compared as zero against zero.
    paged = f"PagerDown-{unique}"
    ok(intake.post("/v1/alerts", json={"service": "pager-service", "summary": "pager down", "labels": {"alertname": paged}}), 202)
    noisy = {"service": "billing-worker", "summary": "billing queue stuck", "labels": {"alertname": f"Billing-{unique}"},
             "starts_at": (now() - timedelta(minutes=20)).isoformat()}
    for _ in range(3):  # the second and third attach to the first one's incident
        ok(intake.post("/v1/alerts", json=noisy), 202)
    ok(intake.post("/v1/alerts", json={**noisy, "status": "resolved"}), 202)
    declared = ok(admin.post("/v1/incidents", json={"title": f"Checkout slow {unique}", "service": "checkout-api",
                                                     "severity": "SEV2"}), 201)
    path = f"/v1/incidents/{declared['incident_id']}"
    ok(admin.post(f"{path}/acknowledge"))
    ok(admin.post(f"{path}/resolve"))
    # The fast policy pages three levels of three seconds each, then gives up.
    paged_id = incident_id_for(paged)
    wait_until(lambda: sql("SELECT 1 FROM audit_events WHERE incident_id = $1 AND change = 'escalation_failed'", paged_id),
               timeout=40, what="the pager incident's escalation to fail")
    wait_until(lambda: sql("SELECT status, alert_count FROM incidents WHERE record->'labels'->>'alertname' = $1",
                           f"Billing-{unique}") == [{"status": "resolved", "alert_count": 4}],
               what="the billing incident with its four alerts, resolved by monitoring")

    before = wait_for_agreement(platform)
    counters = before["counters"]
    for name in ("incidents_opened_total", "incidents_acknowledged_total", "incidents_resolved_total",
                 "escalations_total", "escalation_failures_total", "alerts_deduplicated_total", "notifications_sent_total"):
        assert counters[name] > 0, name
    assert before["mttr_minutes"] and before["reopen_rate"] and before["postmortems_required"] > 0

    platform.restart("metrics")
    # The first answer after the restart (the exporter refuses to answer while recovering).
    samples = wait_until(lambda: scrape(platform), timeout=60, what="/metrics after the restart")
    after = exported(samples)
    assert close_enough(after, before), differences(after, before)
    assert close_enough(wait_for_agreement(platform), before)

    # Killed while busy: offsets not yet committed are delivered again after the restart.
    burst = {**noisy, "labels": {"alertname": f"Burst-{unique}"}}
    for _ in range(15):
        ok(intake.post("/v1/alerts", json=burst), 202)
    platform.restart("metrics", signal.SIGKILL)
    wait_until(lambda: sql("SELECT alert_count FROM incidents WHERE record->'labels'->>'alertname' = $1",
                           f"Burst-{unique}") == [{"alert_count": 15}], what="all 15 alerts of the burst recorded")
    final = wait_for_agreement(platform, timeout=60)
    assert final["counters"]["alerts_deduplicated_total"] == counters["alerts_deduplicated_total"] + 14
    assert final["counters"]["incidents_opened_total"] == counters["incidents_opened_total"] + 1


def test_redelivered_messages_are_not_counted_twice(platform, admin, unique):
    incident = ok(admin.post("/v1/incidents", json={"title": f"Billing lag {unique}", "service": "billing-worker",
                                                     "severity": "SEV3"}), 201)
    incident_id = incident["incident_id"]
    path = f"/v1/incidents/{incident_id}"
    ok(admin.post(f"{path}/acknowledge"))
    audits = read_topic("incident.audit", lambda m: m["incident_id"] == incident_id,
                        until=lambda found: any(m["change"] == "acknowledged" for m in found))
    notes = read_topic("incident.communications", lambda m: m["incident_id"] == incident_id,
                       until=lambda found: any(m["kind"] == "acknowledged" for m in found))
    baseline = wait_for_agreement(platform)

    reproduce("incident.audit", audits)
    reproduce("incident.communications", notes)
    # A later event on the same partitions: once it is counted, the copies before it were read.
    ok(admin.post(f"{path}/resolve"))
    wait_until(lambda: sql("SELECT 1 FROM communications WHERE incident_id = $1 AND kind = 'resolved'", incident_id),
               what="the resolved notification in the communication log")
    resolved = wait_for_agreement(platform)
    counters, base = resolved["counters"], baseline["counters"]
    assert counters["incidents_resolved_total"] == base["incidents_resolved_total"] + 1
    assert counters["incidents_opened_total"] == base["incidents_opened_total"]
    assert counters["incidents_acknowledged_total"] == base["incidents_acknowledged_total"]
    new_notes = sql("SELECT count(*) AS n FROM communications WHERE incident_id = $1 AND kind = 'resolved'", incident_id)
    assert counters["notifications_sent_total"] == base["notifications_sent_total"] + new_notes[0]["n"]
