"""Poison on every consumed topic: each goes to `dead-letter` with its reason and origin, and
every reader carries on behind it.

Every partition of every topic a service of ours reads (shared/catalogue.py, expanded by
poison_cases.readers) gets three poisons: undecodable bytes, a JSON object of the wrong shape
and JSON that is no object at all. Then one real flow, all of it behind the poison, shows each
(topic, reader) pair at work: alerts that open incidents (one with a dedup key, routed by
fingerprint), a page and a timed escalation, a webhook nobody answers, an acknowledgement, an
override and a maintenance window that must be honoured, a heartbeat that goes silent, the
counters on /metrics and every service's readiness probe.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from harness import SERVICES, read_topic, sql, wait_until
from metrics_queries import scrape
from poison_cases import PASSES_OVER, Poison, consumed_topics, dead_letterers, poison_kinds, produce_poison
from shared import catalogue as cat
from test_escalation import audit, escalated, wait_audit

RUN = uuid.uuid4().hex[:8]
SERVICE, HELD_SERVICE, TEAM, ROTATION, BEAT = "poison-service", "poison-held", "poison-drill", "poison-oncall", "poison-beat"


def pairs() -> set[tuple[str, str]]:
    return {(topic, reader) for topic, found in consumed_topics().items() for reader in found}


def test_every_consumed_topic_has_a_poison_case_for_each_reader():
    topics = consumed_topics()
    # Catalogue names in the expansion: a misspelt consumer would silently drop a reader.
    assert {cat.ALERTS_INTAKE.name, cat.INCIDENT_AUDIT.name, cat.HEALTH_PROBES.name} <= set(topics)
    assert set(topics[cat.HEALTH_PROBES.name]) == {"triage", "escalation", "notification", "metrics", "recorder"}
    assert set(PASSES_OVER) <= pairs(), f"a pass-over for a reader the catalogue does not list: {set(PASSES_OVER) - pairs()}"
    unproven = pairs() - set(PROOFS)
    assert not unproven, f"consumed with no poison case in test_fault_poison.PROOFS: {sorted(unproven)}"
    assert not set(PROOFS) - pairs(), f"cases for readers the catalogue no longer lists: {set(PROOFS) - pairs()}"
    silent = [topic for topic in topics if topic != cat.DEAD_LETTER.name and not dead_letterers(topic)]
    assert not silent, f"topics whose poison no reader dead-letters: {silent}"


def test_each_poison_is_poison_for_its_topics_model():
    for spec in cat.all_topics():
        if spec.name in consumed_topics():
            for kind, value in poison_kinds(RUN).items():
                with pytest.raises(ValidationError):
                    spec.value.model_validate_json(value)


@dataclass
class Poisoned:
    poison: list[Poison]
    metrics_before: dict
    at: float  # monotonic time once every poison was acknowledged by the broker
    figures: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def poisoned(platform) -> Poisoned:
    before = wait_until(lambda: scrape(platform), what="the metrics service")
    # dead-letter first: the dead letters of all the others land behind its poison.
    topics = [cat.DEAD_LETTER.name, *sorted(t for t in consumed_topics() if t != cat.DEAD_LETTER.name)]
    poison = produce_poison(topics, RUN)
    return Poisoned(poison, before, time.monotonic())


def test_each_poison_goes_to_dead_letter_with_reason_and_origin_once_per_reader(poisoned):
    wanted = {(p.origin, reader): p for p in poisoned.poison for reader in dead_letterers(p.topic)}
    origins = {p.origin: p for p in poisoned.poison}

    def ours(m: dict) -> bool:
        return (m.get("source_topic"), m.get("partition"), m.get("offset")) in origins \
            and (m.get("key") or "").startswith(f"poison-{RUN}-")

    def found(letters: list[dict]) -> set:
        return {((m["source_topic"], m["partition"], m["offset"]), m["service"]) for m in letters}

    letters = read_topic("dead-letter", ours, until=lambda got: wanted.keys() <= found(got), timeout=60)
    took = time.monotonic() - poisoned.at
    seen = Counter(((m["source_topic"], m["partition"], m["offset"]), m["service"]) for m in letters)
    missing = sorted(set(wanted) - set(seen))
    doubled = sorted(k for k, n in seen.items() if n > 1)
    strays = sorted(k for k in seen if k not in wanted)  # from a reader that should pass over
    kinds = Counter(p.kind for p in poisoned.poison)
    figures = (f"POISON dead letters: topics={len(consumed_topics())} kinds={len(kinds)} poison sent={len(poisoned.poison)} "
               f"dead letters expected={len(wanted)} found={len(set(seen) & set(wanted))} lost={len(missing)} "
               f"duplicates={len(doubled)} strays={len(strays)} all in {took:.1f}s")
    print(figures)
    assert not missing and not doubled and not strays, f"{figures}; missing {missing[:5]}; doubled {doubled[:5]}; " \
                                                       f"strays {strays[:5]}"
    for letter in letters:
        poison = origins[(letter["source_topic"], letter["partition"], letter["offset"])]
        assert letter["key"] == poison.key, letter
        assert letter["reason"].startswith(("invalid message: ", "processing failed: ")), letter["reason"]
        assert len(letter["reason"]) > len("invalid message: "), letter
        assert f"poison-{RUN}" in letter["payload"], letter  # what came in, kept for the operator
        assert letter["failed_at"]


def _incident_ids(alertname: str) -> list[str]:
    rows = sql("SELECT incident_id FROM incidents WHERE record->'labels'->>'alertname' = $1", alertname)
    return [row["incident_id"] for row in rows]


def _one_incident(alertname: str, timeout: float = 30.0) -> str:
    return wait_until(lambda: (found := _incident_ids(alertname)) and found[0], timeout=timeout,
                      what=f"an incident for {alertname}")


def _sum(samples: dict, name: str, **labels: str) -> float:
    """A counter summed over the series whose labels include ``labels``."""
    return sum(value for key, value in samples.get(name, {}).items() if set(labels.items()) <= set(key))


def _timeline(admin, incident_id: str, change: str) -> list[dict]:
    return [e for e in admin.get(f"/v1/incidents/{incident_id}").json()["timeline"] if e["change"] == change]


def test_every_reader_carries_on_behind_the_poison(platform, intake, admin, poisoned):
    evidence: dict[tuple[str, str], str] = {}
    times: dict[str, float] = {}

    def proven(topic: cat.TopicSpec, reader: str, what: str, since: float | None = None) -> None:
        evidence[(topic.name, reader)] = what
        if since is not None:
            times[what] = round(time.monotonic() - since, 1)

    now = datetime.now(timezone.utc)
    # An override and a window, honoured behind the poison on their topics.
    override = admin.post("/v1/oncall/overrides", json={"rotation": ROTATION, "person": "ivan", "start": now.isoformat(),
                                                        "end": (now + timedelta(hours=1)).isoformat()})
    assert override.status_code == 201, override.text  # answered once the recorder has it
    proven(cat.ONCALL_OVERRIDES, "recorder", "override recorded (201)")
    window = admin.post("/v1/maintenance", json={"services": [HELD_SERVICE], "start": now.isoformat(),
                                                 "end": (now + timedelta(hours=1)).isoformat(), "reason": f"poison {RUN}"})
    assert window.status_code == 201, window.text
    proven(cat.MAINTENANCE_WINDOWS, "recorder", "window recorded (201)")

    assert intake.post(f"/v1/heartbeats/{BEAT}/ping").status_code == 202  # arms it; silence follows
    hooked, held = f"PoisonHooked-{RUN}", f"PoisonHeld-{RUN}"
    sent = [
        # A dedup key: its follow-ups may name only it, so it is routed by fingerprint (triage.alerts).
        {"service": SERVICE, "summary": f"{hooked} firing", "dedup_key": f"poison-{RUN}-hooked",
         "labels": {"alertname": hooked}},
        {"service": HELD_SERVICE, "summary": f"{held} firing", "labels": {"alertname": held}},
    ]
    started = time.monotonic()
    for body in sent:
        response = intake.post("/v1/alerts", json=body)
        assert response.status_code == 202, response.text

    incident_id = _one_incident(hooked)
    proven(cat.ALERTS_INTAKE, "triage", "alert with a dedup key opened its incident", started)
    proven(cat.TRIAGE_ALERTS, "triage", "routed by fingerprint")
    proven(cat.TRIAGE_CORRELATION, "triage", "correlated after routing")
    proven(cat.INCIDENT_AUDIT, "recorder", "incident recorded")
    record = admin.get(f"/v1/incidents/{incident_id}").json()
    assert record["commander"] == "ivan", record["commander"]
    proven(cat.ONCALL_OVERRIDES, "triage", "the override named the commander")

    # The fast policy: paged at once (from the opening on incident.audit), the next level by a deadline check.
    events = wait_audit(incident_id, lambda ev: len(escalated(ev)) >= 2, timeout=30, what="two escalation levels")
    assert "paged person:ivan" in _timeline(admin, incident_id, "escalated")[0]["summary"]
    proven(cat.INCIDENT_AUDIT, "escalation", "paged on opening", started)
    proven(cat.ONCALL_OVERRIDES, "escalation", "paged the override's person")
    proven(cat.DEADLINE_CHECKS, "escalation", "second level after its deadline", started)
    assert [e["data"]["level"] for e in escalated(events)][:2] == [0, 1]

    acknowledged = admin.post(f"/v1/incidents/{incident_id}/acknowledge", json={})
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged", acknowledged.text
    results = sql("SELECT outcome FROM command_results WHERE incident_id = $1", incident_id)
    assert "applied" in {r["outcome"] for r in results}, results
    proven(cat.INCIDENT_COMMANDS, "triage", "acknowledge applied")
    proven(cat.COMMAND_RESULTS, "recorder", "its result recorded")

    def told() -> list[dict]:
        return read_topic(cat.team_topic_name(TEAM), lambda m: m.get("incident_id") == incident_id, timeout=2)

    notes = wait_until(lambda: (found := told()) and "opened" in [n["kind"] for n in found] and found,
                       what="the opening told on the team topic")
    proven(cat.INCIDENT_AUDIT, "notification", "opening told on the team topic", started)

    def log() -> list[dict]:
        return admin.get(f"/v1/incidents/{incident_id}").json()["communication_log"]

    entries = wait_until(lambda: (found := log()) and any(e["channel"].startswith("webhook") for e in found) and found,
                         what="the webhook attempt in the communication log")
    proven(cat.COMMUNICATIONS, "recorder", "communication log recorded")
    assert any(e["status"] == "failed" and e["channel"].startswith("webhook") for e in entries), entries
    proven(cat.WEBHOOK_RETRIES, "notification", "webhook attempted (nobody answers: failed)", started)

    held_id = _one_incident(held)
    wait_until(lambda: _timeline(admin, held_id, "maintenance_held"), what="the held incident marked")
    proven(cat.MAINTENANCE_WINDOWS, "escalation", "opening held by the window")
    wait_until(lambda: [e for e in admin.get(f"/v1/incidents/{held_id}").json()["communication_log"]
                        if e["status"] == "suppressed"], what="the held-back opening in the communication log")
    proven(cat.MAINTENANCE_WINDOWS, "notification", "opening suppressed by the window")

    beat_id = _one_incident(f"heartbeat:{BEAT}", timeout=30)
    proven(cat.HEARTBEAT_PINGS, "escalation", "ping armed the heartbeat")
    proven(cat.HEARTBEAT_CHECKS, "escalation", "silence found by a check", started)

    rejected_path = sum(1 for p in poisoned.poison
                        if p.topic in (cat.ALERTS_INTAKE.name, cat.TRIAGE_ALERTS.name, cat.TRIAGE_CORRELATION.name))
    before = poisoned.metrics_before

    last: dict = {}

    def counted():
        now_ = scrape(platform)
        if now_ is None:
            return None
        delta = {
            "received": _sum(now_, "alerts_received_total") - _sum(before, "alerts_received_total"),
            "received_unparseable": _sum(now_, "alerts_received_total", integration="unparseable")
            - _sum(before, "alerts_received_total", integration="unparseable"),
            "opened": _sum(now_, "incidents_opened_total", service=SERVICE)
            - _sum(before, "incidents_opened_total", service=SERVICE),
            "sent": _sum(now_, "notifications_sent_total", team=TEAM) - _sum(before, "notifications_sent_total", team=TEAM),
            "rejected": _sum(now_, "alerts_rejected_total", reason="invalid message")
            - _sum(before, "alerts_rejected_total", reason="invalid message"),
            "beat": (("name", BEAT),) in now_.get("heartbeat_last_ping_age_seconds", {}),
        }
        last.update(delta)
        ok = (delta["received"] - delta["received_unparseable"] >= 3 and delta["opened"] >= 2 and delta["sent"] >= 1
              and delta["rejected"] >= rejected_path and delta["beat"])
        return delta if ok else None

    try:
        delta = wait_until(counted, timeout=30, what=f"the counters behind the poison (alert-path poison {rejected_path})")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; deltas last seen: {last}") from None
    print(f"POISON metrics deltas: {delta}")
    proven(cat.ALERTS_INTAKE, "metrics", f"alerts received +{delta['received'] - delta['received_unparseable']:.0f} "
                                         f"(+{delta['received_unparseable']:.0f} unparseable)")
    proven(cat.INCIDENT_AUDIT, "metrics", f"incidents opened +{delta['opened']:.0f}")
    proven(cat.COMMUNICATIONS, "metrics", f"notifications sent +{delta['sent']:.0f}")
    proven(cat.DEAD_LETTER, "metrics", f"alerts rejected +{delta['rejected']:.0f} (poison on the alert path: {rejected_path})")
    proven(cat.HEARTBEAT_PINGS, "metrics", "heartbeat last ping exported")

    ready_from = time.monotonic()
    platform.wait_ready(*SERVICES, timeout=30)
    for reader in consumed_topics()[cat.HEALTH_PROBES.name]:
        proven(cat.HEALTH_PROBES, reader, "readiness probe round trip")

    duplicates = {name: len(_incident_ids(name)) - 1 for name in (hooked, held, f"heartbeat:{BEAT}")}
    opened_notes = [n for n in notes if n["kind"] == "opened"]
    print(f"POISON flow: poison={len(poisoned.poison)} alerts sent={len(sent)} accepted={len(sent)} "
          f"incidents={1 + 1 + 1} duplicate incidents={sum(duplicates.values())} "
          f"opened notifications={len(opened_notes)} (duplicates {len(opened_notes) - 1}) "
          f"readiness after poison {time.monotonic() - ready_from:.1f}s; seconds to each effect {times}")
    assert set(evidence) == pairs(), f"not shown at work behind the poison: {sorted(pairs() - set(evidence))}"
    assert not any(duplicates.values()), duplicates
    assert len(opened_notes) == 1, opened_notes
    for (topic, reader), what in sorted(evidence.items()):
        print(f"POISON carried on: {topic} / {reader}: {what}")


# What shows each (topic, reader) at work behind its poison (checked above); the catalogue's
# pairs must equal these keys, so that a new topic or reader cannot go without a case.
PROOFS = {
    (cat.ALERTS_INTAKE.name, "triage"): "an alert opens its incident",
    (cat.ALERTS_INTAKE.name, "metrics"): "alerts_received_total counts it",
    (cat.TRIAGE_ALERTS.name, "triage"): "an alert with a dedup key is routed by fingerprint",
    (cat.TRIAGE_CORRELATION.name, "triage"): "the routed alert is correlated",
    (cat.INCIDENT_COMMANDS.name, "triage"): "an acknowledge is applied",
    (cat.INCIDENT_AUDIT.name, "escalation"): "the opening pages",
    (cat.INCIDENT_AUDIT.name, "notification"): "the opening is told on the team topic",
    (cat.INCIDENT_AUDIT.name, "metrics"): "incidents_opened_total counts it",
    (cat.INCIDENT_AUDIT.name, "recorder"): "the incident is in PostgreSQL",
    (cat.COMMAND_RESULTS.name, "recorder"): "the acknowledge's result is in PostgreSQL",
    (cat.COMMUNICATIONS.name, "recorder"): "the communication log is in PostgreSQL",
    (cat.COMMUNICATIONS.name, "metrics"): "notifications_sent_total counts it",
    (cat.DEADLINE_CHECKS.name, "escalation"): "the second level pages after its deadline",
    (cat.WEBHOOK_RETRIES.name, "notification"): "the webhook is attempted",
    (cat.DEAD_LETTER.name, "metrics"): "alerts_rejected_total counts the poison's dead letters",
    **{(cat.HEALTH_PROBES.name, s): "its readiness probe comes back" for s in consumed_topics()[cat.HEALTH_PROBES.name]},
    (cat.HEARTBEAT_PINGS.name, "escalation"): "a ping arms the heartbeat",
    (cat.HEARTBEAT_PINGS.name, "metrics"): "the last ping is exported",
    (cat.HEARTBEAT_CHECKS.name, "escalation"): "a silent heartbeat opens an incident",
    (cat.ONCALL_OVERRIDES.name, "triage"): "the override names the commander",
    (cat.ONCALL_OVERRIDES.name, "escalation"): "the override's person is paged",
    (cat.ONCALL_OVERRIDES.name, "recorder"): "the override is in PostgreSQL",
    (cat.MAINTENANCE_WINDOWS.name, "escalation"): "the window holds the page",
    (cat.MAINTENANCE_WINDOWS.name, "notification"): "the window suppresses the opening",
    (cat.MAINTENANCE_WINDOWS.name, "recorder"): "the window is in PostgreSQL",
}
