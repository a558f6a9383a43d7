"""The output side of the fault tests' accounting: what the broker and PostgreSQL hold for a
run's alerts, incidents and notifications, counted against the senders' ledger.

Every figure is computed from the real records: the intake topic (each copy of each
alert, with the id ingestion gave it), the audit events in PostgreSQL (which alert ids
each one counted), the incidents table, the team topic and the communication log.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from harness import _behind, _partitions, sql, sql_snapshot
from alert_stream import Ledger

# Notifications that an incident gets at most once whatever happens to it (the test's
# incidents are never resolved or reopened, and the slow policy pages only its first level
# within the test): a second one of these, under any id, is a duplicate page.
ONCE_PER_INCIDENT = ("opened", "escalated", "acknowledged")


def topic_since(topic: str, since: float, predicate: Callable[[dict], bool] | None = None) -> list[dict]:
    """The JSON messages on ``topic`` written at or after ``since`` (epoch seconds), up to its end
    now, each with ``_key``, ``_partition``, ``_offset`` and ``_ts`` (the record's epoch seconds).

    Reads from the offsets of ``since`` (not from the beginning): a whole suite's intake topic
    holds the storms of other tests.
    """

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await _partitions(consumer, topic)
            consumer.assign(partitions)
            starts = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
            end = await consumer.end_offsets(partitions)
            for tp in partitions:
                consumer.seek(tp, starts[tp].offset if starts[tp] is not None else end[tp])
            found: list[dict] = []
            while await _behind(consumer, partitions, end):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        if record.offset >= end[TopicPartition(record.topic, record.partition)]:
                            continue
                        try:
                            value = json.loads(record.value)
                        except ValueError:
                            continue
                        value.update(_key=record.key.decode() if record.key else None, _partition=record.partition,
                                     _offset=record.offset, _ts=record.timestamp / 1000)
                        if predicate is None or predicate(value):
                            found.append(value)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def intake_copies(run: str, since: float) -> dict[int, list[str]]:
    """sequence number -> the ids of its copies on the intake topic (ingestion gives each copy its own)."""
    copies: dict[int, list[str]] = defaultdict(list)
    for alert in topic_since("alerts.intake", since, lambda m: (m.get("annotations") or {}).get("run") == run):
        copies[int(alert["annotations"]["seq"])].append(alert["alert_id"])
    return dict(copies)


@dataclass
class Accounting:
    """Alerts: from the ledger (sent, accepted) to the intake topic (copies) to the audit events in PostgreSQL."""

    incidents: dict[str, list[str]]  # alert name -> incident ids (more than one: a duplicate incident)
    copies: dict[int, list[str]]  # sequence number -> ids of its copies on the intake topic
    counted: dict[str, list[tuple[str, str]]]  # alert id -> (incident, event) of each audit event that counted it
    alert_count: int  # the incidents' alert_count, summed (PostgreSQL's incidents table)
    audit_versions: Counter  # (incident, version) -> rows in audit_events
    events: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, copies: dict[int, list[str]], names: list[str]) -> "Accounting":
        named = "SELECT incident_id FROM incidents WHERE record->'labels'->>'alertname' = ANY($1::text[])"
        rows, events = sql_snapshot(
            ("SELECT incident_id, record->'labels'->>'alertname' AS name, alert_count FROM incidents"
             " WHERE record->'labels'->>'alertname' = ANY($1::text[])", (names,)),
            ("SELECT event_id, incident_id, version, change, data, occurred_at FROM audit_events"
             f" WHERE incident_id IN ({named})", (names,)))
        incidents: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            incidents[row["name"]].append(row["incident_id"])
        counted: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for event in events:
            data = event["data"] = _json(event["data"])
            if event["change"] == "opened" and data.get("alert_id"):
                counted[data["alert_id"]].append((event["incident_id"], event["event_id"]))
            if event["change"] == "alerts_attached":
                for origin in data.get("alerts") or ():
                    counted[origin["alert_id"]].append((event["incident_id"], event["event_id"]))
        return cls(incidents=dict(incidents), copies=copies, counted=dict(counted),
                   alert_count=sum(row["alert_count"] for row in rows),
                   audit_versions=Counter((e["incident_id"], e["version"]) for e in events), events=events)

    def on_incident(self, seq: int) -> bool:
        """Every copy of the alert counted by exactly one audit event, all on one incident."""
        copies = self.copies.get(seq, [])
        places = [self.counted.get(alert_id, []) for alert_id in copies]
        return bool(copies) and all(len(p) == 1 for p in places) and len({p[0][0] for p in places}) == 1

    def figures(self, ledger: Ledger, seqs: range | None = None) -> dict:
        with ledger.lock:
            accepted = set(ledger.accepted)
            uncertain = set(ledger.uncertain)
            resent = set(ledger.resent)
        if seqs is not None:
            accepted, uncertain, resent = ({s for s in x if s in seqs} for x in (accepted, uncertain, resent))
        sent = len(seqs) if seqs is not None else ledger.sent
        accounted = {s for s in accepted if self.on_incident(s)}
        extra = {s for s in self.copies if (seqs is None or s in seqs) and len(self.copies[s]) > 1}
        return {
            "sent": sent, "accepted": len(accepted), "accounted": len(accounted), "lost": len(accepted - accounted),
            "resent": len(resent), "resent_twice_on_intake": len(extra), "twice_not_uncertain": len(extra - uncertain),
        }

    def totals(self) -> dict:
        return {
            "incidents": sum(len(v) for v in self.incidents.values()),
            "duplicate_incidents": sum(len(v) - 1 for v in self.incidents.values()),
            "alerts_counted": len(self.counted),
            "double_counted": sum(1 for v in self.counted.values() if len(v) > 1),
            "alert_count_sum": self.alert_count,
            "audit_row_duplicates": sum(n - 1 for n in self.audit_versions.values() if n > 1),
        }


@dataclass
class NotificationCount:
    """The notifications on one team topic for a set of incidents, against the communication log."""

    copies: dict[str, list[float]]  # notification id -> record time of each copy on the topic
    kinds: dict[str, dict[str, set[str]]]  # incident -> kind -> notification ids
    logged: set[str]  # notification ids the communication log (PostgreSQL) has for this topic

    @classmethod
    def read(cls, team: str, incident_ids: set[str], since: float) -> "NotificationCount":
        copies: dict[str, list[float]] = defaultdict(list)
        kinds: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for note in topic_since(f"notifications.{team}", since, lambda m: m.get("incident_id") in incident_ids):
            copies[note["notification_id"]].append(note["_ts"])
            kinds[note["incident_id"]][note["kind"]].add(note["notification_id"])
        rows = sql("SELECT record_id FROM communications WHERE incident_id = ANY($1::text[]) AND channel = $2"
                   " AND status = 'sent'", sorted(incident_ids), f"kafka:notifications.{team}")
        logged = {row["record_id"].removesuffix(":topic") for row in rows}
        return cls(copies=dict(copies), kinds={i: dict(k) for i, k in kinds.items()}, logged=logged)

    def duplicates(self) -> dict[str, list[float]]:
        """notification id -> times of its copies, for those on the topic more than once."""
        return {nid: times for nid, times in self.copies.items() if len(times) > 1}

    def repeated_kinds(self) -> dict[tuple[str, str], int]:
        """(incident, kind) -> distinct notifications beyond the first, for the once-only kinds."""
        return {(incident, kind): len(ids) - 1 for incident, by_kind in self.kinds.items()
                for kind, ids in by_kind.items() if kind in ONCE_PER_INCIDENT and len(ids) > 1}

    def per_incident(self) -> dict[str, int]:
        """incident -> copies beyond the first on the topic (the at-least-once duplicates)."""
        extra: Counter = Counter()
        for incident, by_kind in self.kinds.items():
            for ids in by_kind.values():
                extra[incident] += sum(len(self.copies[nid]) - 1 for nid in ids)
        return {incident: n for incident, n in extra.items() if n}

    def kind_totals(self) -> dict[str, int]:
        totals: Counter = Counter()
        for by_kind in self.kinds.values():
            for kind, ids in by_kind.items():
                totals[kind] += len(ids)
        return dict(totals)


def now() -> float:
    return time.time()
