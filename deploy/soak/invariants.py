"""What must hold after the soak, each check returning its figures and its violations.

- alerts: every alert answered 2xx is on exactly one incident, once (the recorder's
  receipts, one per alert id, and the fingerprint's reference count agree with the
  client's ledger; an alert answered 5xx or not at all may be there once, or not);
- audit: every incident's audit versions run 1..version without a gap and chain by hash;
- table: PostgreSQL's incident rows equal triage's incident table (read from its
  changelog, the latest value per key), field by field;
- metrics: the exporter equals the SQL definitions (tests/integration/metrics_queries.py);
- notifications: one notification id per (event, kind, team); redeliveries counted;
- processes: every PID the soak started or saw is gone (or, on a borrowed platform,
  only the current service processes remain).
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import Enum

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

import metrics_queries
from chaos import pid_alive
from harness import read_topic, sql, wait_until
from load import Ledger
from shared.db.incident_rows import BESIDE
from shared.domain.incident import Incident
from shared.domain.incident_summary import FIELDS, IncidentSummary


@dataclass
class Check:
    name: str
    figures: dict = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def line(self) -> str:
        figures = ", ".join(f"{k}={v}" for k, v in self.figures.items())
        verdict = "ok" if self.ok else f"VIOLATED ({len(self.violations)}): " + "; ".join(self.violations[:5])
        return f"{self.name:<14} {verdict} | {figures}"


def soak_incidents(run: str) -> list[dict]:
    return sql("SELECT * FROM incidents WHERE record->'labels'->>'soak' = $1 ORDER BY incident_id", run)


def _recorded(fingerprints: list[str]) -> dict[str, Counter]:
    """fingerprint -> {incident id: alerts recorded there (receipts, one per alert id)}."""
    found: dict[str, Counter] = defaultdict(Counter)
    for row in sql("SELECT fingerprint, incident_id, count(*) AS n FROM incident_alert_receipts"
                   " WHERE fingerprint = ANY($1::text[]) GROUP BY 1, 2", fingerprints):
        found[row["fingerprint"]][row["incident_id"]] = row["n"]
    return found


def drain(ledger: Ledger, timeout: float, quiet_for: float = 3.0) -> Check:
    """Wait until every accepted alert is recorded and the audit trail has been quiet for
    ``quiet_for`` seconds; a violation after ``timeout`` (the other checks still run and
    say what is missing)."""
    check = Check("drain")
    started, state = time.monotonic(), {"events": -1, "since": time.monotonic(), "missing": None}
    fps = sorted(ledger.accepted)

    def drained() -> bool:
        recorded = _recorded(fps)
        state["missing"] = sum(max(0, n - sum(recorded[fp].values())) for fp, n in ledger.accepted.items())
        [row] = sql("SELECT count(*) AS n FROM audit_events")
        if row["n"] != state["events"] or state["missing"]:
            state["events"], state["since"] = row["n"], time.monotonic()
            return False
        return time.monotonic() - state["since"] >= quiet_for

    try:
        wait_until(drained, timeout=timeout, interval=0.5, what="every accepted alert to be recorded")
    except AssertionError as exc:
        check.violations.append(f"{exc}: {state['missing']} accepted alerts not recorded")
    check.figures = {"seconds": round(time.monotonic() - started, 1), "missing": state["missing"]}
    return check


def alerts(ledger: Ledger, incidents: list[dict]) -> Check:
    check = Check("alerts")
    fps = sorted(set(ledger.accepted) | set(ledger.uncertain))
    recorded = _recorded(fps)
    refs: dict[str, Counter] = defaultdict(Counter)
    for row in sql("SELECT fingerprint, incident_id, count FROM incident_alerts WHERE fingerprint = ANY($1::text[])",
                   fps):
        refs[row["fingerprint"]][row["incident_id"]] = row["count"]
    lost = extra = maybe = 0
    for fp in fps:
        accepted, uncertain, on = ledger.accepted[fp], ledger.uncertain[fp], recorded[fp]
        n = sum(on.values())
        lost += max(0, accepted - n)
        extra += max(0, n - accepted - uncertain)
        maybe += min(uncertain, max(0, n - accepted))
        if len(on) > 1:
            check.violations.append(f"fingerprint {fp} on {len(on)} incidents: {dict(on)}")
        if dict(refs[fp]) != dict(on):
            check.violations.append(f"fingerprint {fp}: reference counts {dict(refs[fp])}, receipts {dict(on)}")
    if lost:
        check.violations.append(f"{lost} accepted alerts lost")
    if extra:
        check.violations.append(f"{extra} alerts recorded beyond those sent")
    counted = sum(row["alert_count"] for row in incidents)
    ids = [row["incident_id"] for row in incidents]
    [row] = sql("SELECT count(*) AS n FROM incident_alert_receipts WHERE incident_id = ANY($1::text[])", ids)
    if counted != row["n"]:
        check.violations.append(f"incidents count {counted} alerts, receipts hold {row['n']} (double counting)")
    per_key = Counter(row["correlation_key"] for row in incidents)
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    if duplicates:
        check.violations.append(f"{duplicates} duplicate incidents (a correlation key on more than one)")
    if ledger.refused:
        check.violations.append(f"{len(ledger.refused)} valid alert requests refused with a 4xx: {ledger.refused[:3]}")
    if ledger.fingerprint_mismatches:
        check.violations.append(f"{ledger.fingerprint_mismatches} answers named another fingerprint")
    check.figures = {"sent": ledger.sent, "accepted": ledger.accepted_total,
                     "uncertain": sum(ledger.uncertain.values()), "accounted_for": ledger.accepted_total - lost,
                     "lost": lost, "uncertain_recorded": maybe, "extra": extra, "recorded": counted, "incidents": len(incidents),
                     "duplicate_incidents": duplicates, "fingerprints": len(fps)}
    return check


def audit(incidents: list[dict]) -> Check:
    check = Check("audit")
    versions = {row["incident_id"]: row["version"] for row in incidents}
    events = 0
    for row in sql("SELECT incident_id, array_agg(version ORDER BY version) AS versions,"
                   " array_agg(prev_hash ORDER BY version) AS prev, array_agg(hash ORDER BY version) AS hash"
                   " FROM audit_events WHERE incident_id = ANY($1::text[]) GROUP BY 1", list(versions)):
        incident_id, have = row["incident_id"], row["versions"]
        events += len(have)
        if have != list(range(1, versions[incident_id] + 1)):
            gaps = sorted(set(range(1, versions[incident_id] + 1)) - set(have))
            check.violations.append(f"{incident_id}: versions {have[:3]}..{have[-3:]} of {versions[incident_id]}"
                                    f" (missing {gaps[:5]})")
        elif any(prev != hashed for prev, hashed in zip(row["prev"][1:], row["hash"])):
            check.violations.append(f"{incident_id}: the hash chain is broken")
        versions.pop(incident_id)
    for incident_id in versions:
        check.violations.append(f"{incident_id}: no audit events recorded")
    check.figures = {"incidents": len(incidents), "events": events}
    return check


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _plain(value):
    return value.value if isinstance(value, Enum) else value


def _differences(table: dict, row: dict) -> list[str]:
    """Where PostgreSQL's row differs from the table's value, field by field."""
    incident = Incident.model_validate(table["incident"])
    summary = IncidentSummary.of(incident)
    mine = {name: _plain(getattr(summary, name)) for name in FIELDS}
    found = [f"{name}: table {mine[name]!r}, database {row[name]!r}" for name in FIELDS if not _same(mine[name], row[name])]
    if table.get("audit_head") != row["audit_head"]:
        found.append(f"audit_head: table {table.get('audit_head')}, database {row['audit_head']}")
    stored = Incident.model_validate(json.loads(row["record"]) if isinstance(row["record"], str) else row["record"])
    ours, theirs = incident.model_dump(mode="json"), stored.model_dump(mode="json")
    found += [f"record.{k}: table {ours.get(k)!r}, database {theirs.get(k)!r}" for k in ours.keys() | theirs.keys()
              if ours.get(k) != theirs.get(k)]
    return found


async def _table_against_database(topic: str, ids: set[str], timeout: float) -> tuple[dict, dict[str, list[str]]]:
    """Reads the changelog to its end and compares; while they differ (the recorder lags the
    table by a little), reads on and compares again, until ``timeout``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    await consumer.start()
    latest: dict[str, dict] = {}
    wanted = {json.dumps(i).encode(): i for i in ids}
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while True:
            end = await consumer.end_offsets(partitions)
            while any([await consumer.position(tp) < end[tp] for tp in partitions]):
                for records in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                    for record in records:
                        if record.key in wanted and record.value is not None:
                            latest[wanted[record.key]] = json.loads(record.value)
            rows = {r["incident_id"]: dict(r) for r in
                    await conn.fetch("SELECT * FROM incidents WHERE incident_id = ANY($1::text[])", list(ids))}
            diffs = {}
            for incident_id in ids:
                if incident_id not in latest and incident_id not in rows:
                    continue  # allocated for an opening that never happened: neither holds it
                if incident_id not in latest:
                    diffs[incident_id] = ["not in triage's table"]
                elif incident_id not in rows:
                    diffs[incident_id] = ["not in PostgreSQL"]
                elif found := _differences(latest[incident_id], rows[incident_id]):
                    diffs[incident_id] = found
            if not diffs or time.monotonic() > deadline:
                return latest, diffs
            await asyncio.sleep(1.0)
    finally:
        await consumer.stop()
        await conn.close()


def allocated_since(since) -> set[str]:
    """Incident ids triage allocated in PostgreSQL since ``since`` (one per opening)."""
    return {r["incident_id"] for r in sql("SELECT incident_id FROM incident_id_allocations WHERE allocated_at >= $1",
                                          since)}


def table(app_prefix: str, incidents: list[dict], allocated: set[str], timeout: float = 60.0) -> Check:
    """``allocated``: every incident id allocated during the soak, so that an incident triage
    holds but PostgreSQL never got is found too (an id allocated for an opening that a
    crash cut short is in neither, and is reused when the opening is redelivered)."""
    check = Check("table=sql")
    ids = {row["incident_id"] for row in incidents}
    topic = f"{app_prefix}-triage-incidents-changelog"
    latest, diffs = asyncio.run(_table_against_database(topic, ids | allocated, timeout))
    unopened = allocated - ids - set(latest)
    for incident_id, found in sorted(diffs.items()):
        check.violations.append(f"{incident_id}: {'; '.join(found[:3])}")
    fields = len(FIELDS) + len(BESIDE)
    check.figures = {"incidents": len(ids), "in_table": len(latest), "equal": len(ids - set(diffs)),
                     "fields_each": fields, "allocated_unopened": len(unopened)}
    return check


def metrics(platform) -> Check:
    check = Check("metrics=sql")
    try:
        agreed = metrics_queries.wait_for_agreement(platform, timeout=60)
        check.figures = {"opened": agreed["counters"]["incidents_opened_total"],
                         "alerts_deduplicated": agreed["counters"]["alerts_deduplicated_total"],
                         "notifications_sent": agreed["counters"]["notifications_sent_total"],
                         "open": sum(agreed["incidents_open"].values())}
    except AssertionError as exc:
        check.violations.append(str(exc)[:600])
    return check


def notifications(incidents: list[dict], teams: tuple[str, ...]) -> Check:
    check = Check("notifications")
    ids = {row["incident_id"] for row in incidents}
    messages = [m for team in teams for m in read_topic(f"notifications.{team}", lambda m: m.get("incident_id") in ids,
                                                          timeout=30)]
    per_id = Counter(m["notification_id"] for m in messages)
    per_event: dict[tuple, set] = defaultdict(set)
    for m in messages:
        per_event[(m["event_id"], m["kind"], m["team"], tuple(m.get("targets") or ()))].add(m["notification_id"])
    doubled = {k: v for k, v in per_event.items() if len(v) > 1}
    for (event_id, kind, team, _), found in list(doubled.items())[:5]:
        check.violations.append(f"{len(found)} different notifications for {event_id} {kind} to {team}")
    if len(doubled) > 5:
        check.violations.append(f"... {len(doubled)} events notified more than once in all")
    check.figures = {"messages": len(messages), "distinct": len(per_id),
                     "redelivered": sum(n - 1 for n in per_id.values()), "duplicates": len(doubled)}
    return check


def processes(started: dict[str, set[int]], still_running: dict[str, int] | None = None) -> Check:
    """``started``: what -> PIDs. With ``still_running`` (a borrowed platform), those PIDs
    must be alive and every other one gone."""
    check = Check("processes")
    keep = set((still_running or {}).values())
    left = {what: sorted(p for p in pids if p not in keep and pid_alive(p)) for what, pids in started.items()}
    for what, pids in left.items():
        if pids:
            check.violations.append(f"{what}: {pids} still running")
    for what, pid in (still_running or {}).items():
        if not pid_alive(pid):
            check.violations.append(f"{what} (pid {pid}) is not running")
    check.figures = {"pids": sum(len(p) for p in started.values()), "left_behind": sum(len(p) for p in left.values())}
    return check
