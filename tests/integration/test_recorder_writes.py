"""The recorder's writer against the real PostgreSQL: one transaction per batch, idempotent under
redelivery, a refused row alone, alert references with labels, capped and said so."""
from __future__ import annotations

import asyncio
import os

import pytest

from audit_events import alerts_attached, forget, ref, synthetic_id
from harness import incident_for, sql, wait_until
from services.recorder.writer import BatchWriter
from shared.db.pool import create_pool
from shared.db.records import RecordedEvent
from shared.db.incident_rows import BESIDE
from shared.domain.incident_summary import FIELDS
from shared.messages import AuditEvent


def write(events: list[dict], cap: int = 10_000) -> list[tuple[int, str]]:
    """Write ``events`` as one fetched batch would be; the (index, reason) of each refused one."""

    async def run():
        pool = await create_pool(os.environ["DATABASE_URL"], max_size=2)
        try:
            items = [(i, RecordedEvent.parse(AuditEvent.model_validate(e))) for i, e in enumerate(events)]
            return await BatchWriter(pool, cap).write(items)
        finally:
            await pool.close()

    return asyncio.run(run())


@pytest.fixture
def scratch(platform):
    """Incident ids for this test; their rows are removed afterwards (no service ever saw them)."""
    ids: list[str] = []
    yield ids
    forget(ids)


def _storm(ids: list[str], incidents: int, events_each: int, service: str) -> list[dict]:
    """Events interleaved across incidents as partitions deliver them; 20 hosts per incident."""
    events = []
    for v in range(1, events_each + 1):
        for incident_id in ids[:incidents]:
            host = f"host-{v % 20}"
            events.append(alerts_attached(incident_id, service, v, [ref(host, count=(v + 19) // 20)], alert_count=v,
                                          distinct=min(v, 20)))
    return events


def _state(ids: list[str]) -> dict:
    return {
        "events": sql("SELECT count(*) AS n FROM audit_events WHERE incident_id = ANY($1::text[])", ids)[0]["n"],
        "incidents": {r["incident_id"]: (r["version"], r["alert_count"]) for r in sql(
            "SELECT incident_id, version, alert_count FROM incidents WHERE incident_id = ANY($1::text[])", ids)},
        "refs": {(r["incident_id"], r["fingerprint"]): (r["count"], r["last_seen"]) for r in sql(
            "SELECT incident_id, fingerprint, count, last_seen FROM incident_alerts WHERE incident_id = ANY($1::text[])",
            ids)},
        # The transactions that wrote the rows still in place.
        "writers": {r["x"] for r in sql(
            "SELECT xmin::text AS x FROM audit_events WHERE incident_id = ANY($1::text[]) UNION "
            "SELECT xmin::text FROM incidents WHERE incident_id = ANY($1::text[]) UNION "
            "SELECT xmin::text FROM incident_alerts WHERE incident_id = ANY($1::text[])", ids)},
    }


def test_a_large_batch_is_one_transaction_and_redelivery_changes_nothing(scratch, unique):
    scratch.extend(synthetic_id() for _ in range(50))
    events = _storm(scratch, 50, 100, f"rec-bulk-{unique}")
    assert write(events) == []
    first = _state(scratch)
    assert first["events"] == 5000
    assert set(first["incidents"].values()) == {(100, 100)}
    assert len(first["refs"]) == 50 * 20 and {c for c, _ in first["refs"].values()} == {5}
    assert len(first["writers"]) == 1, "every row of the batch was written by one transaction"
    # Redelivered whole, then its older half again: no row is added, rewritten or regressed.
    assert write(events) == []
    assert write(events[:2500]) == []
    assert _state(scratch) == first


def test_a_row_postgresql_refuses_is_reported_alone_and_the_rest_is_written(scratch, unique):
    incident_id = synthetic_id()
    scratch.append(incident_id)
    events = [alerts_attached(incident_id, f"rec-refused-{unique}", v, [ref("host-1", v)], alert_count=v)
              for v in range(1, 31)]
    # PostgreSQL's text and jsonb cannot hold NUL (the consumer mends NUL in raw bytes; this bypasses it).
    events[16]["summary"] = "bad\u0000byte"
    refused = write(events)
    assert [index for index, _ in refused] == [16]
    assert "rejected by PostgreSQL" in refused[0][1]
    versions = {r["version"] for r in sql("SELECT version FROM audit_events WHERE incident_id = $1", incident_id)}
    assert versions == set(range(1, 31)) - {17}
    assert sql("SELECT version FROM incidents WHERE incident_id = $1", incident_id)[0]["version"] == 30


def test_references_keep_their_labels_and_are_capped_with_the_record_saying_so(scratch, admin, unique):
    incident_id = synthetic_id()
    scratch.append(incident_id)
    service = f"rec-cap-{unique}"
    hosts = [ref(f"host-{i}", 1, labels={"instance": f"host-{i}", "rack": "r1"}) for i in range(8)]
    assert write([alerts_attached(incident_id, service, 1, hosts, alert_count=8, distinct=8)], cap=5) == []
    # A stored one seen again is updated; a ninth is counted (alert_count) but not listed.
    again = [ref("host-0", 2, labels={"instance": "host-0", "rack": "r2"}), ref("host-8", 1)]
    assert write([alerts_attached(incident_id, service, 2, again, alert_count=10, distinct=9)], cap=5) == []
    record = admin.get(f"/v1/incidents/{incident_id}").json()
    assert record["alert_count"] == 10
    assert record["alerts_stored"] == 5 and record["alerts_truncated"] is True and record["distinct_alerts"] == 9
    listed = {a["fingerprint"]: a for a in record["alerts"]}
    assert len(listed) == 5 and "host-8" not in listed
    assert listed["host-0"]["count"] == 2 and listed["host-0"]["labels"] == {"instance": "host-0", "rack": "r2"}
    assert all(a["labels"]["rack"] for a in listed.values())
    assert record["alerts"][0]["fingerprint"] == "host-0", "the most recently seen first"


def test_an_older_reference_never_overwrites_a_newer_one(scratch, unique):
    incident_id = synthetic_id()
    scratch.append(incident_id)
    service = f"rec-order-{unique}"
    newer = alerts_attached(incident_id, service, 3, [ref("h", 3, status="resolved")], alert_count=3)
    older = alerts_attached(incident_id, service, 2, [ref("h", 2)], alert_count=2)
    assert write([newer]) == [] and write([older]) == []
    [row] = sql("SELECT count, status FROM incident_alerts WHERE incident_id = $1", incident_id)
    assert (row["count"], row["status"]) == (3, "resolved")
    assert sql("SELECT version FROM incidents WHERE incident_id = $1", incident_id)[0]["version"] == 3


def test_the_incidents_table_has_exactly_the_projections_columns(platform):
    columns = {r["column_name"] for r in sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'incidents'")}
    assert columns == {*FIELDS, *BESIDE}


def test_an_alerts_labels_reach_its_incident_record(platform, intake, admin, unique):
    alertname = f"Labelled-{unique}"
    labels = {"alertname": alertname, "instance": "db-7:9100", "rack": "b2"}
    first = {"service": "billing-worker", "summary": "disk full", "dedup_key": f"lab-{unique}", "labels": labels}
    assert intake.post("/v1/alerts", json=first).status_code == 202
    incident = incident_for(admin, alertname)
    assert incident["alerts"][0]["labels"] == labels and incident["alerts_stored"] == 1
    assert incident["alerts_truncated"] is False
    # The same alert again: counted on its reference, which keeps its labels.
    assert intake.post("/v1/alerts", json=first).status_code == 202
    again = wait_until(lambda: (r := admin.get(f"/v1/incidents/{incident['incident_id']}").json())["alert_count"] == 2
                       and r, what="the second alert recorded")
    assert [(a["count"], a["labels"]) for a in again["alerts"]] == [(2, labels)]


def test_the_writer_asks_the_real_server_whether_it_answers(platform):
    """What tells a stuck client from an outage (writer.ClientStuck) sees the running PostgreSQL."""
    assert asyncio.run(BatchWriter(None, 10, os.environ["DATABASE_URL"]).server_answers()) is True
