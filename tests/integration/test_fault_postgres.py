"""PostgreSQL stopped for 30 s (fast shutdown) under a stream of alerts, reads and commands.

What must hold: intake keeps answering 202 (credentials are cached); every read of the API
and of the console answers 503 with Retry-After saying the database is unavailable, never a
500; commands go to the broker (202 with their command id) and are applied; the recorder
rides it out and catches up; new incidents get proper ids once the database is back; and
afterwards every accepted alert is on exactly one incident, no incident is doubled, none
dead-lettered, and the audit rows equal the audit events on the topic exactly.
"""
from __future__ import annotations

import time
from collections import Counter

import httpx

from console_session import signed_in_client
from harness import read_topic, sql, sql_snapshot, wait_until
from outage_load import OutageLoad
from shared.domain.ids import INCIDENT_ID
from stack_control import start_stack, stop_postgres

OUTAGE_SECONDS = 30.0
SERVICES = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")


def _incidents(pattern: str) -> list[dict]:
    return sql("SELECT incident_id, alert_count, status, record->'labels'->>'alertname' AS name FROM incidents"
               " WHERE service = 'scale-service' AND record->'labels'->>'alertname' LIKE $1", pattern)


def _snapshot(pattern: str) -> tuple[list[dict], list[dict]]:
    """The incidents and their alert references as of one moment (harness.sql_snapshot)."""
    incidents = ("SELECT incident_id, alert_count, status, record->'labels'->>'alertname' AS name FROM incidents"
                 " WHERE service = 'scale-service' AND record->'labels'->>'alertname' LIKE $1")
    by_id = f"SELECT incident_id FROM ({incidents}) AS i"
    rows, refs = sql_snapshot((incidents, (pattern,)),
                              ("SELECT incident_id, fingerprint, count FROM incident_alerts"
                               f" WHERE incident_id IN ({by_id})", (pattern,)))
    return rows, refs


def _accounted(load: OutageLoad, tag: str, until: float = float("inf")) -> tuple[list[dict], list[dict]] | None:
    """The test's incidents and alert references, once every alert accepted before ``until`` is in PostgreSQL."""
    incidents, refs = _snapshot(f"PgDown-{tag}-%")
    wanted = {key for accepted in list(load.accepted) if accepted.at < until for key in accepted.dedup_keys}
    return (incidents, refs) if wanted <= {r["fingerprint"] for r in refs} else None


def _shortfall(load: OutageLoad, tag: str) -> str:
    incidents, refs = _snapshot(f"PgDown-{tag}-%")
    wanted = {key: accepted.alertname for accepted in list(load.accepted) for key in accepted.dedup_keys}
    missing = sorted(set(wanted) - {r["fingerprint"] for r in refs})
    names = {i["name"] for i in incidents}
    return (f"accepted {len(wanted)}, recorded references {len(refs)}, incidents {len(incidents)}, missing "
            f"{len(missing)} (first {[(k, wanted[k], wanted[k] in names) for k in missing[:3]]}), "
            f"references sample {refs[:2]}")


def _recorder_says(platform, status: int, words: str) -> bool:
    answer = httpx.get(f"{platform.recorder_url}/readyz", timeout=8)
    return answer.status_code == status and words in answer.text


def test_postgresql_outage_loses_nothing_and_answers_503_not_500(platform, intake, admin, tokens, unique):
    started = time.monotonic()
    # An incident from before the outage: read, and written to (updates), all through it.
    intake.post("/v1/alerts", json={"service": "scale-service", "summary": "before the outage", "severity": "warning",
                                    "labels": {"alertname": f"PgPre-{unique}", "instance": "pre"}}).raise_for_status()
    [pre] = wait_until(lambda: _incidents(f"PgPre-{unique}"), timeout=30, what="the incident opened before the outage")
    pre_id = pre["incident_id"]
    web = signed_in_client(platform.web_url, tokens["platform-admin"])  # signed in while the database is up
    reads = [
        (admin, "list", "/v1/incidents?limit=20"),
        (admin, "incident", f"/v1/incidents/{pre_id}"),
        (admin, "filtered list", "/v1/incidents?status=triggered&service=scale-service&limit=20"),
        (admin, "export", f"/v1/incidents/{pre_id}/export"),
        (web, "console board", "/"),
        (web, "console incident", f"/incidents/{pre_id}"),
    ]
    load = OutageLoad(intake=intake, reads=reads, command=admin, command_path=f"/v1/incidents/{pre_id}/updates",
                      tag=unique)
    pids = {name: platform.child_pid(name) for name in SERVICES}
    load.start()
    try:
        wait_until(lambda: len(load.accepted) >= 10 and load.commands, timeout=30, what="load before the outage")

        stopping = time.monotonic()  # fast shutdown: clients are cut off from here
        down = stop_postgres()
        wait_until(lambda: _recorder_says(platform, 503, "PostgreSQL unavailable"), timeout=20,
                   what="the recorder's /readyz to say PostgreSQL is unavailable")
        ack = admin.post(f"/v1/incidents/{pre_id}/acknowledge", json={})
        # The outage lasts its 30 s while the load runs: the wait is for that time to pass.
        wait_until(lambda: time.monotonic() - down >= OUTAGE_SECONDS, timeout=OUTAGE_SECONDS + 5, interval=0.5,
                   what="the outage's 30 s")
        back = start_stack()
        wait_until(lambda: _recorder_says(platform, 200, '"ready":true'), timeout=60, what="the recorder ready again")
        try:
            # Caught up: everything accepted while PostgreSQL was away is recorded (the load goes on).
            caught = wait_until(lambda: _accounted(load, unique, until=back) and time.monotonic(), timeout=90,
                                what="the recorder to catch up with every alert accepted during the outage")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_shortfall(load, unique)}") from None
        # Served fresh again, and a command answered with the incident's new state (the listener is back).
        wait_until(lambda: {a.stream for a in load.between(caught, float("inf")) if a.status == 200} >= {"read", "command"},
                   timeout=30, what="a read and a command answered 200 after the recovery")
    finally:
        load.stop()
    recovery = caught - back
    ended = time.monotonic()

    during = load.between(stopping, back)
    late_503 = [a for a in load.between(back, ended) if a.status == 503]
    reads_back = min((a.at for a in load.between(back, ended) if a.stream == "read" and a.status == 200),
                     default=float("nan")) - back
    everything = load.between(0, ended)
    statuses = load.statuses(everything)
    read_503 = [a for a in during if a.stream == "read" and a.status == 503]
    server_errors = [a for a in everything if a.status >= 500 and a.status != 503 or a.status == 0]

    # Every accepted alert on exactly one incident, each new key on one incident with a proper id.
    incidents, refs = wait_until(lambda: _accounted(load, unique), timeout=60, what="every accepted alert recorded")
    ids = [i["incident_id"] for i in incidents]
    accepted_keys = [key for accepted in load.accepted for key in accepted.dedup_keys]
    per_key = Counter(r["fingerprint"] for r in refs)
    lost = [k for k in accepted_keys if k not in per_key]
    doubled_refs = [k for k in accepted_keys if per_key[k] > 1 or any(r["count"] != 1 for r in refs
                                                                     if r["fingerprint"] == k)]
    names = Counter(i["name"] for i in incidents)
    duplicate_incidents = sum(n - 1 for n in names.values())
    alert_total = sum(i["alert_count"] for i in incidents)
    bad_ids = [i for i in ids if not INCIDENT_ID.fullmatch(i)]
    before = {a.alertname for a in load.accepted if a.at < stopping}
    keys_during = {a.alertname for a in load.accepted if stopping <= a.at < back} - before

    # The audit trail: rows in PostgreSQL equal the events on incident.audit, exactly.
    wanted = set(ids) | {pre_id}
    # Escalation may still add events (the incidents are not acknowledged): compare one moment's
    # topic with the rows once the recorder has what the topic had.
    audit: dict = {}

    def same_audit() -> bool:
        audit["topic"] = {e["event_id"] for e in read_topic("incident.audit", lambda v: v.get("incident_id") in wanted,
                                                            timeout=1)}
        audit["rows"] = sql("SELECT event_id, incident_id, version FROM audit_events"
                            " WHERE incident_id = ANY($1::text[])", list(wanted))
        return {r["event_id"] for r in audit["rows"]} == audit["topic"]

    try:
        wait_until(same_audit, timeout=30, interval=0.5, what="the audit rows to equal the topic's audit events")
    except AssertionError:
        pass  # the assertion below names the difference
    rows, topic_ids = audit["rows"], audit["topic"]
    row_ids = Counter(r["event_id"] for r in rows)
    duplicate_rows = sum(n - 1 for n in Counter((r["incident_id"], r["version"]) for r in rows).values())
    dead = read_topic("dead-letter", lambda v: unique in v.get("payload", ""), timeout=5)

    # Commands sent while PostgreSQL was away: on the broker, then applied.
    pending = [body for status, body in load.commands if status == 202] + ([ack.json()] if ack.status_code == 202 else [])
    pending_ids = [body["command_id"] for body in pending]
    results = {r["command_id"]: r["outcome"] for r in sql(
        "SELECT command_id, outcome FROM command_results WHERE command_id = ANY($1::text[])", pending_ids)}
    pre_after = admin.get(f"/v1/incidents/{pre_id}").json()
    # The API serves what the recorder wrote after the outage (not a stale view).
    opened_during = next(i for i in incidents if i["name"] in keys_during)
    served = admin.get(f"/v1/incidents/{opened_during['incident_id']}").json()

    figures = (
        f"alerts sent {load.sent}, accepted {len(accepted_keys)}, accounted for {len(accepted_keys) - len(lost)}, "
        f"lost {len(lost)}, alert_count total {alert_total}, incidents {len(incidents)} "
        f"(of them first alerted while PostgreSQL was away {len(keys_during)}), duplicate incidents {duplicate_incidents}, "
        f"doubled alert references {len(doubled_refs)}, bad incident ids {len(bad_ids)}, dead-lettered {len(dead)}; "
        f"audit rows {len(rows)}, audit events on the topic {len(topic_ids)}, duplicate audit rows {duplicate_rows}; "
        f"reads 503 during the outage {len(read_503)} of {sum(1 for a in during if a.stream == 'read')}, "
        f"responses 500 {len(server_errors)}; answers {dict(sorted(statuses.items()))}; "
        f"commands during the outage 202 {len(pending)}, applied after {sum(1 for o in results.values() if o == 'applied')}; "
        f"acknowledge during the outage {ack.status_code}; outage {back - down:.1f}s (stop to back {back - stopping:.1f}s); "
        f"recovery (PostgreSQL back to recorder caught up) {recovery:.1f}s, 503 after it was back {len(late_503)} (the last {max((a.at - back for a in late_503), default=0):.1f}s after), to the first read answered 200 {reads_back:.1f}s; test {ended - started:.0f}s"
    )
    print(f"\nFAULT-POSTGRES figures: {figures}")
    restarted = {name: (pids[name], platform.child_pid(name)) for name in SERVICES if platform.child_pid(name) != pids[name]}
    print(f"FAULT-POSTGRES restarted services: {restarted or 'none'}")
    if late_503:
        print(f"FAULT-POSTGRES first 503 after PostgreSQL was back: {late_503[0].path} {late_503[0].body[:200]}")

    assert not server_errors, f"{figures}; first: {server_errors[:3]}"
    assert load.sent == len(load.accepted), f"intake refused alerts during the outage: {figures}"
    assert read_503, f"no read answered 503 during the outage: {figures}"
    for kind in {kind for _, kind, _ in reads}:
        answers = [a for a in read_503 if a.path == kind]
        assert answers, f"{kind} never answered 503 during the outage: {figures}"
        assert all("database is unavailable" in a.body and a.retry_after == "5" for a in answers), \
            f"{kind}: {answers[0]}"
    assert not lost and not doubled_refs and alert_total == len(accepted_keys), \
        f"{figures}; lost {lost[:5]} doubled {doubled_refs[:5]}"
    assert duplicate_incidents == 0 and len(incidents) == len(names) == len(set(load.alertname(n) for n in range(load.sent))), \
        f"{figures}; {names.most_common(3)}"
    assert not bad_ids and not dead, f"{figures}; {bad_ids[:3]} {dead[:1]}"
    assert set(row_ids) == topic_ids and duplicate_rows == 0 and max(row_ids.values()) == 1, \
        f"{figures}; only in PostgreSQL {sorted(set(row_ids) - topic_ids)[:3]}, only on the topic " \
        f"{sorted(topic_ids - set(row_ids))[:3]}"
    assert ack.status_code == 202 and pending and all(results.get(c) == "applied" for c in pending_ids), \
        f"{figures}; {ack.text[:200]} {results}"
    assert pre_after["status"] == "acknowledged", figures
    assert served["alert_count"] == opened_during["alert_count"] == load.alerts_per_key, f"{figures}; {served}"
    for name in ("ingestion", "recorder"):
        assert name not in restarted, f"{name} was restarted, it should ride the outage out: {figures}"
    assert keys_during, f"no new incident was needed during the outage: {figures}"
    platform.wait_ready(timeout=60)
