"""The metrics twice: as the exporter serves them, and as SQL over PostgreSQL's records gives
them (the definitions of README.md, "Metrics" written as queries)."""
from __future__ import annotations

import asyncio
import json
import math
import os
from datetime import datetime, timezone

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from harness import TEST_CONFIG, sql, wait_until
from shared.config_loader import load_organisation

WINDOW_SECONDS = load_organisation(TEST_CONFIG).metrics_window.total_seconds()

# Audit changes and the counter each one bumps.
AUDIT_COUNTERS = {
    "opened": "incidents_opened_total",
    "acknowledged": "incidents_acknowledged_total",
    "resolved": "incidents_resolved_total",
    "closed": "incidents_closed_total",
    "reopened": "incidents_reopened_total",
    "escalated": "escalations_total",
    "escalation_failed": "escalation_failures_total",
    "mttr_target_breached": "mttr_target_breaches_total",
    "postmortem_overdue": "postmortem_reminders_total",
}
BY_SEVERITY = ("mttr_minutes", "mttr_incidents", "reopen_rate", "reopen_rate_incidents", "incidents_over_mttr_target",
               "time_to_acknowledge_minutes")


def scrape(platform, url: str | None = None) -> dict[str, dict[tuple, float]] | None:
    """name -> {sorted label pairs -> value}; None while the service is down or recovering.
    ``url``: another metrics worker's /metrics than the platform's (the first's)."""
    try:
        response = httpx.get(url or platform.metrics_url, timeout=5)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def exported(samples: dict[str, dict[tuple, float]]) -> dict:
    """The exporter's numbers in the shape ``from_database`` gives."""
    summary: dict = {}
    for name in BY_SEVERITY:
        summary[name] = {dict(labels)["severity"]: value for labels, value in samples.get(name, {}).items()}
    summary["incidents_open"] = {
        dict(labels)["severity"]: value for labels, value in samples["incidents_open"].items() if value
    }
    for name in ("postmortems_required", "postmortems_completed", "postmortems_overdue", "postmortem_completion_rate"):
        summary[name] = samples[name][()]
    counters = [*AUDIT_COUNTERS.values(), "alerts_deduplicated_total", "notifications_sent_total",
                "notifications_failed_total"]
    summary["counters"] = {name: sum(samples.get(name, {}).values()) for name in counters}
    return summary


def from_database() -> dict:
    window = WINDOW_SECONDS
    summary: dict = {name: {} for name in BY_SEVERITY}
    for row in sql(
        "SELECT severity, avg(extract(epoch FROM resolved_at - detected_at) / 60) AS mean, count(*) AS n,"
        " count(*) FILTER (WHERE extract(epoch FROM resolved_at - detected_at) / 60"
        "                  > (record->>'mttr_target_minutes')::float) AS over"
        " FROM incidents WHERE status IN ('resolved', 'closed')"
        " AND resolved_at >= now() - make_interval(secs => $1) GROUP BY severity", window,
    ):
        summary["mttr_minutes"][row["severity"]] = float(row["mean"])
        summary["mttr_incidents"][row["severity"]] = row["n"]
        summary["incidents_over_mttr_target"][row["severity"]] = row["over"]
    for row in sql(
        "SELECT severity, avg((reopen_count > 0)::int) AS rate, count(*) AS n FROM incidents"
        " WHERE first_resolved_at >= now() - make_interval(secs => $1) GROUP BY severity", window,
    ):
        summary["reopen_rate"][row["severity"]] = float(row["rate"])
        summary["reopen_rate_incidents"][row["severity"]] = row["n"]
    for row in sql(
        "SELECT i.severity, avg(extract(epoch FROM a.first_ack - i.opened_at) / 60) AS mean FROM incidents i"
        " JOIN (SELECT incident_id, min(occurred_at) AS first_ack FROM audit_events WHERE change = 'acknowledged'"
        "       GROUP BY incident_id) a USING (incident_id)"
        " WHERE a.first_ack >= now() - make_interval(secs => $1) GROUP BY i.severity", window,
    ):
        summary["time_to_acknowledge_minutes"][row["severity"]] = float(row["mean"])
    summary["incidents_open"] = {
        row["severity"]: row["n"] for row in sql(
            "SELECT severity, count(*) AS n FROM incidents"
            " WHERE status IN ('triggered', 'acknowledged', 'mitigating') GROUP BY severity")
    }
    [pm] = sql(
        "SELECT count(*) AS required, count(*) FILTER (WHERE postmortem_status = 'completed') AS completed,"
        " count(*) FILTER (WHERE postmortem_status <> 'completed' AND postmortem_due_at <= now()) AS overdue"
        " FROM incidents WHERE postmortem_required AND postmortem_created_at >= now() - make_interval(secs => $1)",
        window,
    )
    summary["postmortems_required"] = pm["required"]
    summary["postmortems_completed"] = pm["completed"]
    summary["postmortems_overdue"] = pm["overdue"]
    due = pm["completed"] + pm["overdue"]
    summary["postmortem_completion_rate"] = pm["completed"] / due if due else 1.0
    changes = {row["change"]: row["n"] for row in sql("SELECT change, count(*) AS n FROM audit_events GROUP BY change")}
    statuses = {
        row["status"]: row["n"] for row in sql(
            "SELECT status, count(*) AS n FROM communications WHERE direction = 'notification' GROUP BY status")
    }
    summary["counters"] = {name: changes.get(change, 0) for change, name in AUDIT_COUNTERS.items()}
    # One alerts_attached event folds many alerts: its data says how many fired.
    [folded] = sql("SELECT coalesce(sum((data->>'firing')::int), 0) AS n FROM audit_events"
                   " WHERE change = 'alerts_attached'")
    summary["counters"]["alerts_deduplicated_total"] = folded["n"]
    summary["counters"]["notifications_sent_total"] = statuses.get("sent", 0)
    summary["counters"]["notifications_failed_total"] = statuses.get("failed", 0) + statuses.get("dead_lettered", 0)
    return summary


def close_enough(a, b) -> bool:
    """Equal, with floats equal to a thousandth (the exporter rounds means to 4 decimals)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close_enough(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, abs_tol=1e-3)
    return a == b


def differences(a: dict, b: dict) -> dict:
    return {key: (a.get(key), b.get(key)) for key in a.keys() | b.keys() if not close_enough(a.get(key), b.get(key))}


def wait_for_agreement(platform, timeout: float = 30.0) -> dict:
    """The exporter's numbers once they equal PostgreSQL's (both consume the same events, with lag)."""
    last: dict = {}

    def agree():
        samples = scrape(platform)
        if samples is None:
            return None
        mine, theirs = exported(samples), from_database()
        last["diff"] = differences(mine, theirs)
        return mine if not last["diff"] else None

    try:
        return wait_until(agree, timeout=timeout, interval=0.3, what="the exporter to agree with PostgreSQL")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still different (exporter, database): {last.get('diff')}") from None


def now() -> datetime:
    return datetime.now(timezone.utc)


def incident_id_for(alertname: str, timeout: float = 30.0) -> str:
    """The incident opened for an alert name (straight from the recorder's table: cheap to poll)."""

    def find():
        rows = sql("SELECT incident_id FROM incidents WHERE record->'labels'->>'alertname' = $1", alertname)
        return rows[0]["incident_id"] if rows else None

    return wait_until(find, timeout=timeout, what=f"an incident for {alertname}")


def reproduce(topic: str, messages: list[dict]) -> None:
    """Publish messages read with ``read_topic`` again, each onto the partition it came from."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], acks="all")
        await producer.start()
        try:
            for message in messages:
                value = {k: v for k, v in message.items() if k not in ("_key", "_partition")}
                await producer.send_and_wait(topic, json.dumps(value).encode(), key=message["_key"].encode(),
                                             partition=message["_partition"])
        finally:
            await producer.stop()

    asyncio.run(run())
