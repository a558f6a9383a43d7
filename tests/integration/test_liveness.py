"""A service stalled on the broker reports unhealthy, exits and is restarted; nothing is lost.

The broker is paused (SIGSTOP) past the liveness bound: it still accepts TCP connections
(the kernel completes them), but answers nothing, so every commit and flush hangs, the
way the fresh-start stall of issue 14 hung in ``producer.flush()``.
"""
from __future__ import annotations

import os
import signal

from harness import REPO, wait_until

STREAMING = ("triage", "escalation", "notification", "metrics")
ALERTS = 2_000


def _counts(admin, names: set[str]) -> dict[str, int]:
    found = {}
    for summary in admin.get("/v1/incidents", params={"service": "billing-worker", "limit": 1000}).json()["incidents"]:
        record = admin.get(f"/v1/incidents/{summary['incident_id']}").json()
        if record["labels"].get("alertname") in names:
            found[record["labels"]["alertname"]] = record["alert_count"]
    return found


def _log_since(platform, name: str, offset: int) -> str:
    with open(platform.log_path(name), "rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def test_a_paused_broker_gets_stalled_services_restarted_and_every_alert_is_still_processed(
        platform, intake, admin, unique):
    bound = float(platform.env["LIVENESS_SECONDS"])
    names = [f"Paused{i}-{unique}" for i in range(4)]
    # Enough that triage is still working through them when the broker stops answering (tens of
    # seconds of work): with 400, a triage that had taken and committed them all before the
    # pause, its next fetch merely unanswered, had nothing in flight to stall, and was rightly
    # not restarted, which failed the test once in a fresh-clone run.
    alerts = [{"service": "billing-worker", "summary": f"{names[i % 4]} firing", "severity": "warning",
               "dedup_key": f"{unique}-paused{i % 4}", "labels": {"alertname": names[i % 4]}} for i in range(ALERTS)]
    before = {name: platform.child_pid(name) for name in STREAMING}
    log_offsets = {name: platform.log_path(name).stat().st_size for name in STREAMING}
    for start in range(0, len(alerts), 100):
        assert intake.post("/v1/alerts", json=alerts[start:start + 100]).status_code == 202
    kafka = int((REPO / ".local" / "test" / "run" / "kafka.pid").read_text())
    os.kill(kafka, signal.SIGSTOP)
    try:
        # Triage is mid-way through the alerts: its next confirmation or commit hangs.
        wait_until(lambda: platform.child_pid("triage") not in (None, before["triage"]), timeout=bound + 30,
                   interval=0.5, what=f"the stalled triage to be restarted (bound {bound:.0f}s)")
    finally:
        os.kill(kafka, signal.SIGCONT)
    # Others with a commit in flight may have been restarted too, each for the same reason.
    restarted = [n for n in STREAMING if platform.child_pid(n) != before[n]]
    for name in restarted:
        log = _log_since(platform, name, log_offsets[name])
        assert f"{name} unhealthy: " in log and "while the broker accepts connections" in log, log[-2000:]
        assert "ended with exit 75 (unhealthy)" in log and "restarting in" in log

    platform.wait_ready()
    found = wait_until(lambda: (c := _counts(admin, set(names))) and sum(c.values()) >= ALERTS and c,
                       timeout=180, interval=1.0, what=f"the {ALERTS} alerts on their incidents after the pause")
    assert found == {name: ALERTS // 4 for name in names}
