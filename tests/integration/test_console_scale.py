"""With a thousand incidents in the database every console page renders in under 300 ms."""
from __future__ import annotations

import statistics
import time
import uuid

from console_session import signed_in_client
from harness import wait_until

INCIDENTS = 1000
BUDGET_SECONDS = 0.300


def test_every_page_renders_within_300_ms_with_a_thousand_incidents(platform, intake, admin, tokens):
    run = uuid.uuid4().hex[:6]
    alerts = [{"service": "scale-service", "summary": f"scale {run} #{n}", "severity": "warning",
               "labels": {"alertname": f"Scale{run}x{n}"}} for n in range(INCIDENTS)]
    assert intake.post("/v1/alerts", json=alerts, timeout=120).status_code == 202
    wait_until(lambda: admin.get("/v1/incidents", params={"service": "scale-service", "q": run, "limit": 1})
               .json()["total"] >= INCIDENTS, timeout=300, interval=1.0, what=f"{INCIDENTS} incidents recorded")
    total = admin.get("/v1/incidents", params={"limit": 1}).json()["total"]
    assert total >= INCIDENTS
    some = admin.get("/v1/incidents", params={"service": "scale-service", "limit": 1}).json()["incidents"][0]

    console = signed_in_client(platform.web_url, tokens["platform-admin"])
    pages = ["/", "/?view=all", "/?view=closed", f"/?q={run}", "/?view=all&page=20", f"/incidents/{some['incident_id']}",
             f"/incidents/{some['incident_id']}/postmortem", "/oncall", "/numbers", "/declare"]
    slowest = {}
    for path in pages:
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            answer = console.get(path)
            timings.append(time.perf_counter() - started)
            assert answer.status_code == 200, (path, answer.status_code)
        # The median of five: one outlier on a shared two-core machine is not the page's speed.
        slowest[path] = statistics.median(timings)
    report = {p: round(s * 1000) for p, s in slowest.items()}
    print(f"console render times with {total} incidents (ms, median of 5): {report}")
    assert max(slowest.values()) < BUDGET_SECONDS, report
    assert f"{INCIDENTS}" in console.get("/", params={"q": run}).text.replace(",", "")  # the board counts them all
