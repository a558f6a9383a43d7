"""A real Prometheus (Debian's binary, our flags, a temporary data directory) scrapes every service
with the repository's scrape configuration and rules; its query API gives mttr_minutes and
reopen_rate as the test's incidents imply."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta

import httpx
import pytest

from harness import REPO, wait_until
from metrics_queries import from_database, incident_id_for, now, scrape
from prometheus_process import DEPLOY, running_prometheus, tool

RULES = {
    "IncidentServiceDown", "IncidentMttrTargetBreached", "IncidentMeanTimeToResolveAboveTarget",
    "IncidentEscalationFailed", "IncidentPostmortemsOverdue", "IncidentPostmortemCompletionLow",
    "IncidentNotificationsFailing", "IncidentAlertsRejected", "IncidentHeartbeatMissing",
}


def test_the_scrape_config_is_valid_and_the_alert_rules_do_what_their_tests_say(tmp_path):
    # The one make up WORKERS=2 writes too (deploy/scripts/services.sh): every worker a target.
    workers = tmp_path / "prometheus-workers.yml"
    subprocess.run([sys.executable, "-m", "services.workers", "prometheus", "2", str(workers)], cwd=REPO, check=True,
                   timeout=60)
    for args in (["check", "config", "prometheus.yml"], ["check", "config", str(workers)],
                 ["test", "rules", "rules_test.yml"]):
        result = subprocess.run([tool("promtool"), *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def prometheus(platform, tmp_path_factory):
    port = 19190 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), port, platform.env, platform.logs) as running:
        yield running


def test_prometheus_scrapes_every_service_and_loads_the_rules(prometheus):
    def all_up():
        found = prometheus.query('up{job="incident-platform"}')
        return found if len(found) == 6 and all(found.values()) else None

    up = wait_until(all_up, timeout=30, what="all six scraped services up in prometheus")
    assert set(up) == {"ingestion", "recorder", "triage", "escalation", "notification", "metrics"}
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {rule["name"] for group in groups for rule in group["rules"]} == RULES
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"] if "health" in rule)


def test_every_dashboard_query_is_valid_promql(prometheus):
    dashboard = json.loads((REPO / "deploy" / "grafana" / "dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 14
    for expr in exprs:
        response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5)
        assert response.status_code == 200 and response.json()["status"] == "success", (expr, response.text)
    # Data flows: the metrics service's series are already there.
    wait_until(lambda: prometheus.query("postmortem_completion_rate"), what="the metrics service's series in prometheus")


def sev4(samples: dict, name: str) -> float:
    return samples.get(name, {}).get((("severity", "SEV4"),), 0.0)


def test_prometheus_reports_the_mttr_and_reopen_rate_the_incidents_imply(prometheus, platform, intake, admin, unique):
    # SEV4 is given by hand only, so these incidents are (nearly always) the only ones there;
    # whatever else is counted already is taken into account all the same.
    before = scrape(platform)
    n_mttr, mean_before = sev4(before, "mttr_incidents"), sev4(before, "mttr_minutes")
    n_reopen, rate_before = sev4(before, "reopen_rate_incidents"), sev4(before, "reopen_rate")

    ids = {}
    for name, started in (("a", 90), ("b", 30), ("c", 60)):
        alertname = f"MetricsProbe-{name}-{unique}"
        ok(intake.post("/v1/alerts", json={"service": "billing-worker", "summary": f"probe {name}",
                                           "labels": {"alertname": alertname},
                                           "starts_at": (now() - timedelta(minutes=started)).isoformat()}), 202)
        ids[name] = incident_id_for(alertname)
        path = f"/v1/incidents/{ids[name]}"
        ok(admin.post(f"{path}/severity", json={"severity": "SEV4", "reason": "a probe, no impact"}))
        ok(admin.post(f"{path}/resolve"))
    path = f"/v1/incidents/{ids['c']}"
    ok(admin.post(f"{path}/reopen", json={"reason": "the probe came back"}))
    ok(admin.post(f"{path}/resolve"))

    minutes = {}
    for name, incident_id in ids.items():
        record = ok(admin.get(f"/v1/incidents/{incident_id}"))
        assert record["severity"] == "SEV4" and record["status"] == "resolved"
        span = datetime.fromisoformat(record["resolved_at"]) - datetime.fromisoformat(record["detected_at"])
        minutes[name] = span.total_seconds() / 60
    # Detection is the alert's startsAt, resolution the (last) resolve: about 90, 30 and 60 minutes.
    for name, started in (("a", 90), ("b", 30), ("c", 60)):
        assert started <= minutes[name] < started + 3, minutes
    expected_mttr = (mean_before * n_mttr + sum(minutes.values())) / (n_mttr + 3)
    expected_reopen = (rate_before * n_reopen + 1) / (n_reopen + 3)  # c was reopened

    def reported():
        mttr = prometheus.query('mttr_minutes{severity="SEV4"}').get("SEV4")
        reopen = prometheus.query('reopen_rate{severity="SEV4"}').get("SEV4")
        if mttr is None or reopen is None:
            return None
        if abs(mttr - expected_mttr) < 1e-3 and abs(reopen - expected_reopen) < 1e-6:
            return mttr, reopen
        return None

    mttr, reopen = wait_until(reported, timeout=30, what=f"prometheus to report mttr {expected_mttr:.3f}, "
                                                         f"reopen rate {expected_reopen:.4f} for SEV4")
    assert prometheus.query('mttr_incidents{severity="SEV4"}') == {"SEV4": n_mttr + 3}
    database = from_database()
    assert abs(database["mttr_minutes"]["SEV4"] - mttr) < 1e-3
    assert abs(database["reopen_rate"]["SEV4"] - reopen) < 1e-6
    print(f"\nprometheus: mttr_minutes{{SEV4}}={mttr:.4f} reopen_rate{{SEV4}}={reopen:.4f} "
          f"(incidents: {', '.join(f'{m:.2f} min' for m in minutes.values())}; counted before: {n_mttr:g})")


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()
