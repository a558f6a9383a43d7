"""An alert storm: 20,000 alerts on 500 correlation keys are recorded exactly, and an
incident opened in the middle of it is paged before the storm has drained."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx

from harness import read_topic, sql, wait_while_progressing

SERVICES, NAMES, HOSTS, REPEATS = 50, 10, 4, 10  # 500 keys x 4 hosts x 10 = 20,000 alerts


def _storm(unique: str) -> list[dict]:
    alerts = []
    for repeat in range(REPEATS):
        for host in range(HOSTS):
            for service in range(SERVICES):
                for name in range(NAMES):
                    alerts.append({
                        "service": f"storm-{unique}-{service}", "summary": f"Storm{name} on host {host}",
                        "severity": "warning",
                        "labels": {"alertname": f"Storm{name}", "instance": f"host-{host}", "round": str(repeat)},
                    })
    return alerts


def _send(api_url: str, key: str, batches: list[list[dict]]) -> list[int]:
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        return [client.post("/v1/alerts", json=batch).status_code for batch in batches]


def test_a_storm_on_500_keys_is_recorded_exactly_and_a_new_incident_is_paged_during_it(
        platform, tokens, unique):
    alerts = _storm(unique)
    assert len(alerts) == 20_000
    batches = [alerts[i:i + 100] for i in range(0, len(alerts), 100)]
    half = len(batches) // 2
    probe_name = f"ProbeDuringStorm-{unique}"
    probe = {"service": "pager-service", "summary": "the pager is down", "severity": "critical",
             "labels": {"alertname": probe_name}}
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [c for chunk in pool.map(lambda part: _send(platform.api_url, tokens["integration"], part),
                                         [batches[i:half:8] for i in range(8)]) for c in chunk]
        # Half the storm is in: a new problem on another service starts now.
        codes += _send(platform.api_url, tokens["integration"], [[probe]])
        codes += [c for chunk in pool.map(lambda part: _send(platform.api_url, tokens["integration"], part),
                                          [batches[half + i::8] for i in range(8)]) for c in chunk]
    assert set(codes) == {202} and len(codes) == len(batches) + 1

    def storm_rows():
        return sql("SELECT service, record->'labels'->>'alertname' AS name, alert_count,"
                   " (record->>'distinct_alerts')::int AS distinct_alerts FROM incidents WHERE service LIKE $1",
                   f"storm-{unique}-%")

    def recorded() -> tuple[int, list[dict]]:
        rows = storm_rows()
        return sum(r["alert_count"] for r in rows), rows

    # Recorded at the machine's pace: it fails on a stall, not on a slow machine.
    _, rows = wait_while_progressing(recorded, lambda found: found[0] >= len(alerts), amount=lambda found: found[0],
                                     what=f"the storm's {len(alerts)} alerts recorded on their incidents")
    # One incident per correlation key, every alert counted once: none lost, none twice.
    assert len(rows) == SERVICES * NAMES
    assert len({(r["service"], r["name"]) for r in rows}) == SERVICES * NAMES
    assert {r["alert_count"] for r in rows} == {HOSTS * REPEATS}
    assert {r["distinct_alerts"] for r in rows} == {HOSTS}
    assert sum(r["alert_count"] for r in rows) == len(alerts)

    # The probe's page went out while storm alerts were still being folded in.
    (probe_incident,) = sql("SELECT incident_id FROM incidents WHERE record->'labels'->>'alertname' = $1", probe_name)
    pages = read_topic("notifications.pager", lambda m: m.get("incident_id") == probe_incident["incident_id"],
                       until=lambda found: bool(found), timeout=60)
    assert pages, "the probe's incident was never paged"
    paged_at = min(page["occurred_at"] for page in pages)
    storm_events = sql("SELECT max(occurred_at) AS last FROM audit_events a JOIN incidents i USING (incident_id)"
                       " WHERE i.service LIKE $1", f"storm-{unique}-%")
    assert datetime.fromisoformat(paged_at) < storm_events[0]["last"], (paged_at, storm_events[0]["last"])
