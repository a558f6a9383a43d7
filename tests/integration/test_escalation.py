"""Escalation on the real broker: levels paged on time, the failure path, acknowledgement, a SIGKILL.

The test organisation gives ``pager-service`` the ``fast`` policy (3 levels of 3 s,
no repeat) and ``durable-service`` the ``durable`` one (2 levels of 12 s).
"""
from __future__ import annotations

import json
import re
import signal
from datetime import datetime

import httpx

from harness import read_topic, sql, wait_until

FAST_TIMEOUT = 3.0
DURABLE_TIMEOUT = 12.0
# Between two pages: the deadline check runs on a 0.2 s tick, then a round trip through
# Kafka and triage; on a loaded two-core machine that adds up to about a second.
EARLY, LATE = 0.5, 1.5


def open_incident(intake, service: str, alertname: str, **fields) -> str:
    response = intake.post("/v1/alerts", json={"service": service, "summary": f"{alertname} firing",
                                               "labels": {"alertname": alertname}, **fields})
    assert response.status_code == 202, response.text

    def found():
        rows = sql("SELECT incident_id FROM incidents WHERE record->'labels'->>'alertname' = $1", alertname)
        return rows[0]["incident_id"] if rows else None

    # A bound for a loaded machine: the first tests of the suite run while an earlier storm
    # test's notifications and escalations are still being worked off (seen: over 30 s).
    return wait_until(found, timeout=90, what=f"the incident for {alertname}")


def audit(incident_id: str) -> list[dict]:
    rows = sql("SELECT type, change, occurred_at, version, data FROM audit_events WHERE incident_id = $1 "
               "ORDER BY version", incident_id)
    for row in rows:
        row["data"] = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
    return rows


def escalated(events: list[dict]) -> list[dict]:
    return [e for e in events if e["change"] == "escalated"]


def has(change: str):
    return lambda events: any(e["change"] == change for e in events)


def wait_audit(incident_id: str, condition, timeout: float = 30.0, what: str = "audit events") -> list[dict]:
    """The incident's audit events once ``condition(events)`` holds."""

    def check():
        events = audit(incident_id)
        return events if condition(events) else None

    return wait_until(check, timeout=timeout, interval=0.1, what=f"{what} of {incident_id}")


def gap(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def metric(platform, name: str, **labels: str) -> float:
    text = httpx.get(platform.metrics_url, timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_unacknowledged_incident_pages_every_level_on_time_then_escalation_fails(platform, intake, admin, unique):
    failures_before = metric(platform, "escalation_failures_total", team="pager")
    incident_id = open_incident(intake, "pager-service", f"NobodyAnswers-{unique}")

    events = wait_audit(incident_id, has("escalation_failed"), timeout=40, what="the escalation failure")
    pages = escalated(events)
    assert [(e["data"]["round"], e["data"]["level"]) for e in pages] == [(0, 0), (0, 1), (0, 2)]
    primary, secondary, channel = (e["data"]["targets"] for e in pages)
    assert {primary[0], secondary[0]} == {"person:alice", "person:bob"}  # pager-oncall's two
    assert channel == ["team:pager"]
    opened = next(e for e in events if e["change"] == "opened")
    failed = next(e for e in events if e["change"] == "escalation_failed")
    assert failed["type"] == "incident.updated"
    assert failed["data"]["fallback_team"] == "incident-managers"
    assert gap(opened["occurred_at"], pages[0]["occurred_at"]) < LATE  # the first level is paged at once
    moments = [p["occurred_at"] for p in pages] + [failed["occurred_at"]]
    for before, after in zip(moments, moments[1:]):
        assert FAST_TIMEOUT - EARLY <= gap(before, after) <= FAST_TIMEOUT + LATE, (before, after)

    # Each page told the team, in order; the failure told the fallback channel.
    team_notes = read_topic("notifications.pager", lambda m: m["incident_id"] == incident_id,
                            until=lambda found: sum(m["kind"] == "escalated" for m in found) >= 3)
    assert [m["targets"] for m in team_notes if m["kind"] == "escalated"] == [e["data"]["targets"] for e in pages]
    fallback = read_topic("notifications.incident-managers", lambda m: m["incident_id"] == incident_id,
                          until=lambda found: bool(found))
    assert [m["kind"] for m in fallback] == ["escalation_failed"]
    assert "ESCALATION FAILED" in fallback[0]["text"]

    record = admin.get(f"/v1/incidents/{incident_id}").json()
    assert record["escalation_failed"] is True and record["status"] == "triggered"
    wait_until(lambda: metric(platform, "escalation_failures_total", team="pager") >= failures_before + 1,
               what="escalation_failures_total to count the failure")


def test_acknowledgement_at_the_second_level_stops_the_escalation(platform, intake, admin, unique):
    acked = open_incident(intake, "pager-service", f"AckedAtTwo-{unique}")
    # A twin left alone is the clock: its failure comes after the acked one's next deadline.
    control = open_incident(intake, "pager-service", f"LeftAlone-{unique}")
    second = wait_audit(acked, lambda ev: any(e["data"].get("level") == 1 for e in escalated(ev)),
                        what="the second level paged")
    response = admin.post(f"/v1/incidents/{acked}/acknowledge", json={"note": "on it"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "acknowledged"

    page_two = escalated(second)[-1]["occurred_at"]
    control_events = wait_audit(control, has("escalation_failed"), timeout=40, what="the control's failure")
    control_failed = next(e for e in control_events if e["change"] == "escalation_failed")["occurred_at"]
    assert gap(page_two, control_failed) > FAST_TIMEOUT + 1.0, "the control did not outlast the next deadline"

    events = audit(acked)
    assert [e["data"]["level"] for e in escalated(events)] == [0, 1]
    assert not has("escalation_failed")(events)
    assert events[-1]["change"] == "acknowledged"
    notes = read_topic("notifications.pager", lambda m: m["incident_id"] == acked)
    assert [m["kind"] for m in notes] == ["opened", "escalated", "escalated", "acknowledged"]
    assert admin.get(f"/v1/incidents/{acked}").json()["escalation_failed"] is False


def _changelog_says(platform, incident_id: str, condition) -> bool:
    """The escalation table's changelog holds this incident's deadlines in the wanted state."""
    topic = f"{platform.env['APP_PREFIX']}-escalation-deadlines-changelog"
    key = json.dumps(incident_id)  # the table's keys are JSON
    values = read_topic(topic, lambda m: m["_key"] == key)
    return bool(values) and values[-1].get("escalation") is not None and condition(values[-1]["escalation"])


def test_escalation_service_killed_mid_wait_pages_the_next_level_once_on_time(platform, intake, admin, unique):
    incident_id = open_incident(intake, "durable-service", f"KilledMidWait-{unique}")
    first = escalated(wait_audit(incident_id, lambda ev: len(escalated(ev)) == 1, what="the first page"))[0]
    # The deadline is durable once it is in the table's changelog: kill the service then.
    wait_until(lambda: _changelog_says(platform, incident_id, lambda e: e["level"] == 0),
               what="the deadline in the changelog")
    platform.kill("escalation", signal.SIGKILL)
    platform.wait_ready("escalation")

    events = wait_audit(incident_id, lambda ev: len(escalated(ev)) >= 2, timeout=DURABLE_TIMEOUT + 20,
                        what="the second page after the restart")
    second = escalated(events)[1]
    assert second["data"]["level"] == 1 and second["data"]["targets"] == ["person:carol"]
    assert DURABLE_TIMEOUT - EARLY <= gap(first["occurred_at"], second["occurred_at"]) <= DURABLE_TIMEOUT + LATE

    # Stop it, and once the escalation service has seen the stop, count what it ever asked for.
    assert admin.post(f"/v1/incidents/{incident_id}/acknowledge", json={}).status_code == 200
    wait_until(lambda: _changelog_says(platform, incident_id, lambda e: e["status"] == "stopped"),
               what="the escalation stopped in the changelog")
    commands = read_topic("incident.commands", lambda m: m["incident_id"] == incident_id
                          and m["command"]["kind"] == "record_escalation")
    assert [c["command"]["level"] for c in commands] == [0, 1]
    assert [e["data"]["level"] for e in escalated(audit(incident_id))] == [0, 1]
    pages = read_topic("notifications.pager", lambda m: m["incident_id"] == incident_id and m["kind"] == "escalated")
    assert [m["targets"] for m in pages] == [first["data"]["targets"], ["person:carol"]]


def test_resolve_stops_and_reopen_restarts_the_escalation(platform, intake, admin, unique):
    incident_id = open_incident(intake, "pager-service", f"ResolvedThenReopened-{unique}")
    wait_audit(incident_id, lambda ev: len(escalated(ev)) == 1, what="the first page")
    assert admin.post(f"/v1/incidents/{incident_id}/resolve", json={"note": "fixed"}).status_code == 200
    wait_until(lambda: _changelog_says(platform, incident_id, lambda e: e["status"] == "stopped"),
               what="the escalation stopped by the resolve")
    response = admin.post(f"/v1/incidents/{incident_id}/reopen", json={"reason": "it came back"})
    assert response.status_code == 200, response.text

    def after_reopen(events):
        start = [e["change"] for e in events].index("reopened")
        return [e["data"]["level"] for e in escalated(events[start:])]

    events = wait_audit(incident_id, lambda ev: after_reopen(ev) == [0, 1], what="two pages after the reopen")
    assert admin.post(f"/v1/incidents/{incident_id}/resolve", json={}).status_code == 200
    before_reopen = events[: [e["change"] for e in events].index("reopened")]
    # The reopen ran the frozen policy again from its first level, on the same timeouts.
    assert [e["data"]["level"] for e in escalated(before_reopen)] == [0]
    again = escalated(events)[-2:]
    assert FAST_TIMEOUT - EARLY <= gap(again[0]["occurred_at"], again[1]["occurred_at"]) <= FAST_TIMEOUT + LATE
