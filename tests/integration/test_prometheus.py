"""A real Prometheus (Debian's binary, our flags, a temporary data directory) scrapes every service
with the repository's scrape configuration and rules; its query API gives mttr_minutes and
reopen_rate as the test's incidents imply."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from harness import REPO, wait_until
from metrics_queries import from_database, incident_id_for, now, scrape

DEPLOY = REPO / "deploy" / "prometheus"
RULES = {
    "IncidentServiceDown", "IncidentMttrTargetBreached", "IncidentMeanTimeToResolveAboveTarget",
    "IncidentEscalationFailed", "IncidentPostmortemsOverdue", "IncidentPostmortemCompletionLow",
    "IncidentNotificationsFailing", "IncidentAlertsRejected", "IncidentHeartbeatMissing",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: deploy/scripts/observability.sh installs Debian's prometheus package"
    return path


def test_the_scrape_config_is_valid_and_the_alert_rules_do_what_their_tests_say():
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "rules_test.yml"]):
        result = subprocess.run([tool("promtool"), *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str) -> dict[str, float]:
        """The instant vector, keyed by the ``severity`` or ``service`` label (whichever is there)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return {
            r["metric"].get("severity") or r["metric"].get("service", ""): float(r["value"][1])
            for r in body["data"]["result"]
        }


def scrape_config(platform, path: Path) -> None:
    """The repository's prometheus.yml, pointed at the test ports and scraping every second."""
    env = platform.env
    base = int(env["FAUST_WEB_PORT_BASE"])
    ports = {"ingestion": env["INGESTION_PORT"], "recorder": env["RECORDER_PORT"], "triage": base,
             "escalation": base + 1, "notification": base + 2, "metrics": env["METRICS_PORT"]}
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "rules.yml")]
    services = set()
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            service = group["labels"]["service"]
            services.add(service)
            group["targets"] = [f"127.0.0.1:{ports[service]}"]
    assert services == set(ports), "the scrape config names every service"
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def prometheus(platform, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    scrape_config(platform, workdir / "prometheus.yml")
    port = 19190 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {process.returncode}: {(workdir / 'prometheus.log').read_text()}")
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout=60, what="prometheus to be ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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
