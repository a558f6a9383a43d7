"""On call at runtime: who is on call, overrides by API and CLI honoured by commander assignment and
escalation, audited, and deleted again; calendar feeds with revocable feed tokens.

The team oncall-drill has a rotation of its own (drill-oncall: dave, erin, daily at 00:00 UTC),
so its overrides change nobody else's pages.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from harness import incident_for, sql, wait_until

INCIDENTCTL = Path(sys.executable).with_name("incidentctl")
ROTATION, TEAM, SERVICE = "drill-oncall", "oncall-drill", "oncall-drill-service"


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(scope="module")
def ctl(platform, tokens, tmp_path_factory):
    home = tmp_path_factory.mktemp("incidentctl-oncall")
    base = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    base.update(INCIDENT_API_URL=platform.api_url, INCIDENT_CREDENTIALS=str(home / "none.env"))

    def run(*args: str, role: str = "platform-admin") -> Run:
        done = subprocess.run([str(INCIDENTCTL), *args], env=dict(base, INCIDENT_TOKEN=tokens[role]), cwd=home,
                              capture_output=True, text=True, timeout=60)
        return Run(done.returncode, done.stdout, done.stderr)

    return run


def _row(admin: httpx.Client, at: datetime | None = None) -> dict:
    params = {"at": at.isoformat()} if at else {}
    rows = admin.get("/v1/oncall", params=params).json()["oncall"]
    (row,) = [r for r in rows if r["team"] == TEAM]
    return row


def _incident(intake, admin, unique: str, tag: str) -> dict:
    alertname = f"DrillQueueStuck-{tag}-{unique}"
    sent = intake.post("/v1/alerts", json={"service": SERVICE, "summary": f"drill {tag} {unique}",
                                           "labels": {"alertname": alertname}})
    assert sent.status_code == 202
    return incident_for(admin, alertname)


def _first_page(admin, incident_id: str) -> str:
    def paged():
        timeline = admin.get(f"/v1/incidents/{incident_id}").json()["timeline"]
        return next((e["summary"] for e in timeline if e["change"] == "escalated"), None)
    return wait_until(paged, what="the first escalation level to be paged")


def test_an_override_changes_the_commander_and_the_page_until_it_is_deleted(ctl, intake, admin, unique):
    scheduled = _row(admin)
    assert scheduled["rotation"] == ROTATION and scheduled["primary"] in ("dave", "erin")
    assert scheduled["next"] == ({"dave", "erin"} - {scheduled["primary"]}).pop()
    assert datetime.fromisoformat(scheduled["until"]) - datetime.now(timezone.utc) <= timedelta(days=1)

    created = ctl("oncall", "override", "--rotation", ROTATION, "--person", "carol", "--start", "now",
                  "--end", "+1h", "--reason", f"covering {unique}")
    assert created.code == 0, created.err
    override_id = created.out.split()[1].rstrip(":")
    assert override_id.startswith("ovr_") and "carol is on call for drill-oncall" in created.out

    row = _row(admin)
    assert (row["primary"], row["override"], row["next"]) == ("carol", True, scheduled["primary"])
    table = ctl("oncall")
    assert table.code == 0
    header, *lines = table.out.splitlines()
    assert header.split()[:4] == ["TEAM", "ROTATION", "ON", "CALL"]
    assert any(line.split()[:4] == [TEAM, ROTATION, "carol", "(override)"] for line in lines), table.out

    # The next incident's commander and the first page follow the override.
    incident = _incident(intake, admin, unique, "during")
    assert incident["commander"] == "carol"
    assert "paged person:carol" in _first_page(admin, incident["incident_id"])

    listed = ctl("oncall", "override", "--list", "--rotation", ROTATION)
    assert override_id in listed.out and "carol" in listed.out

    deleted = ctl("oncall", "override", "--delete", override_id)
    assert deleted.code == 0, deleted.err
    assert _row(admin)["primary"] == scheduled["primary"]
    after = _incident(intake, admin, unique, "after")
    assert after["commander"] == scheduled["primary"]
    assert f"paged person:{scheduled['primary']}" in _first_page(admin, after["incident_id"])

    trail = sql("SELECT action, actor FROM oncall_audit WHERE subject_id = $1 ORDER BY occurred_at", override_id)
    assert trail == [{"action": "override.created", "actor": "test-platform-admin"},
                     {"action": "override.deleted", "actor": "test-platform-admin"}]
    again = ctl("oncall", "override", "--delete", override_id)
    assert again.code == 6 and "already deleted" in again.err


def test_overrides_are_refused_naming_the_problem(ctl, admin, client_for):
    now = datetime.now(timezone.utc)
    body = {"rotation": ROTATION, "person": "carol", "start": now.isoformat(),
            "end": (now + timedelta(hours=1)).isoformat()}
    for change, field, status in ((dict(rotation="nope"), "rotation", 404), (dict(person="mallory"), "person", 404),
                                  (dict(end=(now - timedelta(hours=1)).isoformat()), "end", 409),
                                  (dict(start="2026-12-24T09:00:00"), "start", 400), (dict(start=1767000000), "start", 400),
                                  (dict(extra=1), "extra", 400)):
        refused = admin.post("/v1/oncall/overrides", json={**body, **change})
        assert refused.status_code == status, (change, refused.text)
        assert field in refused.json()["error"], refused.json()
    assert admin.get("/v1/oncall", params={"at": "0.5"}).status_code == 400
    assert client_for("compliance-officer").post("/v1/oncall/overrides", json=body).status_code == 403
    assert client_for("observability-engineer").get("/v1/oncall").status_code == 200
    assert admin.delete("/v1/oncall/overrides/ovr_000000000000").status_code == 404
    usage = ctl("oncall", "override", "--rotation", ROTATION)
    assert usage.code == 2 and "--person, --start, --end" in usage.err
    bad_time = ctl("oncall", "override", "--rotation", ROTATION, "--person", "carol", "--start", "soon", "--end", "+1h")
    assert bad_time.code == 2 and "not a time" in bad_time.err
    assert ctl("oncall", "override", "--rotation", "nope", "--person", "carol", "--start", "now",
               "--end", "+1h").code == 5
