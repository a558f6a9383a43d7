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
from icalendar import Calendar

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


def _feed(url: str) -> list[dict]:
    """The feed's events, parsed back with icalendar."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(answer.content)
    assert str(calendar["version"]) == "2.0" and str(calendar["prodid"])
    return [{"summary": str(e["summary"]), "start": e.decoded("dtstart"), "end": e.decoded("dtend"),
             "uid": str(e["uid"])} for e in calendar.walk("VEVENT")]


def test_an_override_changes_the_commander_the_page_and_the_calendar_feeds_until_deleted(ctl, intake, admin, unique):
    rotation_url = ctl("oncall", "feed", "--rotation", ROTATION, "--name", f"phone {unique}")
    assert rotation_url.code == 0 and "shown only this once" in rotation_url.err, rotation_url.err
    rotation_url = rotation_url.out.strip()
    frank_url = ctl("oncall", "feed", "--person", "frank").out.strip()
    assert "/v1/rotations/drill-oncall.ics?token=feed_" in rotation_url
    before = _feed(rotation_url)
    # Eight weeks of daily shifts from the current one, alternating dave and erin.
    assert 56 <= len(before) <= 57
    assert {e["summary"] for e in before} == {"On call: dave (drill-oncall)", "On call: erin (drill-oncall)"}
    assert before[-1]["end"] - before[0]["start"] >= timedelta(weeks=8)
    assert _feed(frank_url) == [], "frank is in no rotation's schedule"

    scheduled = _row(admin)
    assert scheduled["rotation"] == ROTATION and scheduled["primary"] in ("dave", "erin")
    assert scheduled["next"] == ({"dave", "erin"} - {scheduled["primary"]}).pop()
    assert datetime.fromisoformat(scheduled["until"]) - datetime.now(timezone.utc) <= timedelta(days=1)

    created = ctl("oncall", "override", "--rotation", ROTATION, "--person", "frank", "--start", "now",
                  "--end", "+1h", "--reason", f"covering {unique}")
    assert created.code == 0, created.err
    override_id = created.out.split()[1].rstrip(":")
    assert override_id.startswith("ovr_") and "frank is on call for drill-oncall" in created.out

    row = _row(admin)
    assert (row["primary"], row["override"], row["next"]) == ("frank", True, scheduled["primary"])
    table = ctl("oncall")
    assert table.code == 0
    header, *lines = table.out.splitlines()
    assert header.split()[:4] == ["TEAM", "ROTATION", "ON", "CALL"]
    assert any(line.split()[:4] == [TEAM, ROTATION, "frank", "(override)"] for line in lines), table.out

    # The next incident's commander and the first page follow the override.
    incident = _incident(intake, admin, unique, "during")
    assert incident["commander"] == "frank"
    assert "paged person:frank" in _first_page(admin, incident["incident_id"])

    listed = ctl("oncall", "override", "--list", "--rotation", ROTATION)
    assert override_id in listed.out and "frank" in listed.out

    # The feeds show the override: frank first, for its hour; then the schedule resumes.
    made = admin.get("/v1/oncall/overrides", params={"rotation": ROTATION}).json()["overrides"][0]
    during = _feed(rotation_url)
    assert during[0]["summary"] == "On call: frank (drill-oncall) (override)"
    seconds = lambda text: datetime.fromisoformat(text).replace(microsecond=0)  # noqa: E731 - RFC 5545 has seconds
    assert (during[0]["start"], during[0]["end"]) == (seconds(made["start"]), seconds(made["end"]))
    assert during[1]["summary"] == f"On call: {scheduled['primary']} (drill-oncall)"
    assert len({e["uid"] for e in during}) == len(during)
    (franks,) = _feed(frank_url)
    assert franks["summary"] == "On call: drill-oncall (override)"
    assert franks["end"] - franks["start"] <= timedelta(hours=1)

    deleted = ctl("oncall", "override", "--delete", override_id)
    assert deleted.code == 0, deleted.err
    assert _row(admin)["primary"] == scheduled["primary"]
    assert _feed(frank_url) == [] and "frank" not in {e["summary"] for e in _feed(rotation_url)}
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
    body = {"rotation": ROTATION, "person": "frank", "start": now.isoformat(),
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
    bad_time = ctl("oncall", "override", "--rotation", ROTATION, "--person", "frank", "--start", "soon", "--end", "+1h")
    assert bad_time.code == 2 and "not a time" in bad_time.err
    assert ctl("oncall", "override", "--rotation", "nope", "--person", "frank", "--start", "now",
               "--end", "+1h").code == 5


def test_feed_tokens_open_one_feed_only_and_stop_working_when_revoked(platform, ctl, admin, client_for):
    base = f"{platform.api_url}/v1"
    made = client_for("compliance-officer").post("/v1/feed-tokens", json={"rotation": ROTATION})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert httpx.get(f"{base}/rotations/{ROTATION}.ics", params={"token": token}).status_code == 200
    other = httpx.get(f"{base}/rotations/pager-oncall.ics", params={"token": token})
    assert other.status_code == 403 and "drill-oncall" in other.json()["error"]
    assert httpx.get(f"{base}/people/dave.ics", params={"token": token}).status_code == 403
    assert httpx.get(f"{base}/rotations/{ROTATION}.ics", params={"token": "feed_guess"}).status_code == 401
    assert httpx.get(f"{base}/rotations/{ROTATION}.ics").status_code == 400
    # A feed token is no API credential, and an API token is no feed token.
    assert httpx.get(f"{base}/oncall", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    user = client_for("platform-admin").headers["Authorization"].split()[1]
    assert httpx.get(f"{base}/rotations/{ROTATION}.ics", params={"token": user}).status_code == 401

    stored = sql("SELECT token_hash FROM feed_tokens WHERE token_id = $1", made.json()["token_id"])
    assert stored and token not in stored[0]["token_hash"], "only a hash is kept"
    listed = ctl("oncall", "feed", "--list")
    assert made.json()["token_id"] in listed.out and token not in listed.out
    assert client_for("observability-engineer").delete(f"/v1/feed-tokens/{made.json()['token_id']}").status_code == 403
    revoked = ctl("oncall", "feed", "--revoke", made.json()["token_id"])
    assert revoked.code == 0, revoked.err
    assert httpx.get(f"{base}/rotations/{ROTATION}.ics", params={"token": token}).status_code == 401
    assert ctl("oncall", "feed", "--revoke", made.json()["token_id"]).code == 6
    trail = sql("SELECT action FROM oncall_audit WHERE subject_id = $1 ORDER BY occurred_at", made.json()["token_id"])
    assert [t["action"] for t in trail] == ["feed_token.created", "feed_token.revoked"]

    assert admin.post("/v1/feed-tokens", json={"rotation": "nope"}).status_code == 404
    assert admin.post("/v1/feed-tokens", json={"person": "mallory"}).status_code == 404
    assert admin.post("/v1/feed-tokens", json={"rotation": ROTATION, "person": "dave"}).status_code == 400
    assert ctl("oncall", "feed").code == 2
