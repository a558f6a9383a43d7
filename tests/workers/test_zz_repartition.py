"""Moving to more partitions on a new cluster (services/repartition), end to end: last in
make test-workers, since it leaves the broker with 8 partitions per keyed topic.

A storm of 1,000 alerts on 50 correlation keys (four hosts each) on 4 partitions; drained;
the services stopped; ``export``; every topic of the platform deleted and created again with
8 partitions; ``replay`` (a second one refused); the services started with TOPIC_PARTITIONS=8.
Then on the new cluster:

- 8 new keys open 8 new incidents, the first at offset 0 of a partition whose offset 0 opened
  an incident before the move: without the replay setting the old opening keys aside in
  PostgreSQL, it would be handed that old incident's id (the same position, the same key);
- 1,000 more alerts attach to the same 50 incidents: 40 alerts each, still four distinct
  alerts (their alert states moved with their correlation keys), no incident opened twice;
- an incident from before the move is acknowledged;
- the metrics exporter agrees with PostgreSQL, and ``alerts_received_total`` carried on.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from harness import sql, wait_until, wait_while_progressing
from metrics_queries import scrape, wait_for_agreement
from pipeline_lag import consumer_lag
from services.group_status import describe
from shared.config_loader import load_organisation
from shared.domain.alerts import correlation_key_of
from shared.kafka.partitioning import partition_of

KEYS, HOSTS, ALERTS, NEW_KEYS = 50, 4, 1_000, 8
OLD, NEW = 4, 8
BATCH = 50
PREFIX = "incident-test"


def _alert(service: str, name: str, host: int) -> dict:
    return {"service": service, "summary": f"{name} firing", "severity": "warning",
            "labels": {"alertname": name, "instance": f"host-{host}"}}


def _storm(run: str) -> list[dict]:
    return [_alert(f"mv-{run}", f"M{run}-{seq % KEYS}", (seq // KEYS) % HOSTS) for seq in range(ALERTS)]


def _send(api: str, key: str, alerts: list[dict]) -> None:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for start in range(0, len(alerts), BATCH):
            response = client.post("/v1/alerts", json=alerts[start:start + BATCH])
            assert response.status_code == 202, (response.status_code, response.text)


def _incidents(run: str) -> list[dict]:
    return sql("SELECT incident_id, record->'labels'->>'alertname' AS name, alert_count, status,"
               " (record->>'distinct_alerts')::int AS distinct_alerts FROM incidents WHERE service = $1", f"mv-{run}")


def _counted(run: str) -> int:
    return sum(row["alert_count"] for row in _incidents(run))


def _drained(what: str) -> None:
    wait_until(lambda: not any(consumer_lag(PREFIX).values()), timeout=240, interval=1.0, what=what)


def _received(platform) -> float:
    samples = wait_until(lambda: scrape(platform), timeout=60, what="the metrics exporter to answer")
    return sum(samples.get("alerts_received_total", {}).values())


def _opening_key(partition: int) -> str:
    """The incident id allocation key of an incident opened at offset 0 of an alerts.intake partition."""
    return hashlib.sha256(f"alerts.intake:{partition}:0".encode()).hexdigest()


def _repartition(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.repartition", *args], env=env, capture_output=True,
                          text=True, timeout=300)


async def _delete_every_topic(bootstrap: str) -> list[str]:
    """A new cluster, as far as the platform can tell: every topic of it gone (Kafka's own kept)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
        await admin.delete_topics(topics)
        return topics
    finally:
        await admin.close()


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t for t in await admin.list_topics() if not t.startswith("__")}
    finally:
        await admin.close()


def test_moving_to_eight_partitions_loses_no_incident(cluster, tokens, tmp_path):
    began = time.monotonic()
    org = load_organisation(cluster.env["INCIDENT_CONFIG"])
    bootstrap = cluster.env["KAFKA_BOOTSTRAP"]
    assert cluster.env.get("TOPIC_PARTITIONS", str(OLD)) == str(OLD)
    platform = cluster.run(1)
    run = os.urandom(3).hex()
    _drained("the platform idle before the storm")
    _send(platform.api_url, tokens["integration"], _storm(run))
    wait_while_progressing(lambda: _counted(run), lambda n: n >= ALERTS, "the storm counted", stall=60)
    before = {row["name"]: row for row in _incidents(run)}
    assert len(before) == KEYS and {(row["alert_count"], row["distinct_alerts"]) for row in before.values()} == {
        (ALERTS // KEYS, HOSTS)}
    _drained("every consumer caught up after the storm")
    wait_for_agreement(platform, timeout=60)
    received = _received(platform)
    old_ids = {row["incident_id"] for row in sql("SELECT incident_id FROM incidents")}
    allocated = {row["opening_key"] for row in sql("SELECT opening_key FROM incident_id_allocations")}
    opened_at_zero = [p for p in range(OLD) if _opening_key(p) in allocated]
    assert opened_at_zero, "no incident opened at offset 0 of an alerts.intake partition before the move"

    cluster.stop()
    wait_until(lambda: not any(g[5] for g in asyncio.run(describe(bootstrap, PREFIX))), timeout=30,
               what="every consumer group empty once the services stopped")
    state = tmp_path / "state.jsonl"
    moved = time.monotonic()
    exported = _repartition(cluster.env, "export", str(state))
    assert exported.returncode == 0, exported.stderr
    export_s = time.monotonic() - moved

    deleted = asyncio.run(_delete_every_topic(bootstrap))
    wait_until(lambda: not asyncio.run(_topics(bootstrap)) & set(deleted), timeout=60, what="the topics deleted")
    env = {**cluster.env, "TOPIC_PARTITIONS": str(NEW)}
    subprocess.run([sys.executable, "-m", "services.topology"], env=env, check=True, timeout=120)
    replay_started = time.monotonic()
    replayed = _repartition(env, "replay", str(state))
    assert replayed.returncode == 0, replayed.stderr
    replay_s = time.monotonic() - replay_started
    again = _repartition(env, "replay", str(state))
    assert again.returncode == 1 and "is not empty" in again.stderr and "nothing was written" in again.stderr, again
    left = {row["opening_key"] for row in sql("SELECT opening_key FROM incident_id_allocations")}
    assert not allocated & left and len(left) == len(allocated), "the old opening keys were not set aside"

    cluster.env["TOPIC_PARTITIONS"] = str(NEW)  # the topics have 8 partitions from now on
    platform = cluster.run(1)
    restarted_s = time.monotonic() - replay_started

    # The first new key lands at offset 0 of a partition whose offset 0 opened an incident before.
    names = [name for name in (f"N{run}-{n}" for n in range(1000))
             if partition_of(correlation_key_of(f"mv-{run}", name, {}, "", org), NEW) in opened_at_zero][:1]
    names += [f"N{run}-new-{n}" for n in range(NEW_KEYS - 1)]
    first = partition_of(correlation_key_of(f"mv-{run}", names[0], {}, "", org), NEW)
    _send(platform.api_url, tokens["integration"], [_alert(f"mv-{run}", names[0], 0)])
    opened = wait_until(lambda: [r for r in _incidents(run) if r["name"] == names[0]], timeout=60,
                        what=f"{names[0]} (offset 0 of alerts.intake partition {first}) opening its own incident")
    [causation] = sql("SELECT causation_id FROM audit_events WHERE incident_id = $1 AND change = 'opened'",
                      opened[0]["incident_id"])
    assert causation["causation_id"] == f"open:alerts.intake:{first}:0", causation
    _send(platform.api_url, tokens["integration"], [_alert(f"mv-{run}", name, 0) for name in names[1:]])
    _send(platform.api_url, tokens["integration"], _storm(run))
    wait_while_progressing(lambda: _counted(run), lambda n: n >= 2 * ALERTS + NEW_KEYS, "the second storm counted",
                           stall=60)

    after = {}
    for row in _incidents(run):
        assert row["name"] not in after, f"{row['name']} has two incidents"
        after[row["name"]] = row
    new = {name: after[name]["incident_id"] for name in names}
    assert len(set(new.values())) == NEW_KEYS and not set(new.values()) & old_ids, (new, old_ids & set(new.values()))
    for name, row in before.items():
        # The same incident, every alert on it, and its four alerts recognised (no new distinct ones).
        assert (after[name]["incident_id"], after[name]["alert_count"], after[name]["distinct_alerts"]) == (
            row["incident_id"], 2 * ALERTS // KEYS, HOSTS), (name, row, after[name])

    earlier = before[f"M{run}-0"]["incident_id"]
    with httpx.Client(base_url=platform.api_url, timeout=60,
                      headers={"Authorization": f"Bearer {tokens['platform-admin']}"}) as admin:
        response = admin.post(f"/v1/incidents/{earlier}/acknowledge", json={"note": "after the move"})
    assert response.status_code == 200, response.text
    wait_until(lambda: sql("SELECT status FROM incidents WHERE incident_id = $1", earlier)[0]["status"]
               == "acknowledged", timeout=30, what=f"{earlier} acknowledged")

    _drained("every consumer caught up after the move")
    wait_for_agreement(platform, timeout=60)
    assert _received(platform) == received + ALERTS + NEW_KEYS
    print(f"\nREPARTITION {OLD} -> {NEW}: {exported.stdout.strip()}; export {export_s:.1f}s; "
          f"{replayed.stdout.strip()}; replay {replay_s:.1f}s; services ready on {NEW} partitions "
          f"{restarted_s:.1f}s after the replay began; whole test {time.monotonic() - began:.0f}s; "
          f"load {open('/proc/loadavg').read().split()[:3]}", flush=True)
