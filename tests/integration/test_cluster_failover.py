"""On the three-broker cluster (make test-cluster), the broker that leads alerts.intake's
partitions is stopped (SIGTERM, by PID) in the middle of an alert storm, then started again.

The storm: 50 correlation keys of 60 alerts each (every alert its own fingerprint), as
Alertmanager groups of 20 and single alerts, paced over 40 s by 8 clients that send a group
answered 503 again after Retry-After. Topics have three copies, two in sync (TOPIC_REPLICATION=3,
TOPIC_MIN_INSYNC_REPLICAS=2): the other two brokers take over the partitions, intake goes on
answering 2xx, and only for alerts that are on the log; nothing accepted is lost, no incident is
duplicated, and every service carries on by itself.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from fault_figures import end_offsets, read_from
from harness import REPO, sql, wait_until
from paced_stream import CLIENT_TIMEOUT, Stream, alert
from stack_control import start_stack, stop_cluster_broker

pytestmark = pytest.mark.cluster  # collected on the cluster profile only (conftest.py)

NAMES, PER_NAME = 50, 60
STREAM_SECONDS = 40.0
AWAY_SECONDS = 15.0  # how long the stopped broker stays away
KAFKA_SERVICES = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics")
MAX_STORED_THOUGH_503 = 10  # a request in flight as its leader went away, answered 503 yet written


def _groups(unique: str) -> list[list[dict]]:
    groups = []
    for n in range(NAMES):
        name, service = f"Failover{n}-{unique}", ("billing-worker", "checkout-api")[n % 2]
        alerts = [alert(name, service, f"{unique}-fo{n}-{host}", host) for host in range(PER_NAME)]
        groups += [alerts[0:20], alerts[20:40], *([a] for a in alerts[40:])]
    random.Random(unique).shuffle(groups)
    return groups


def _references(unique: str) -> list[dict]:
    return sql("SELECT incident_id, fingerprint, name, count FROM incident_alerts WHERE fingerprint LIKE $1",
               f"{unique}-fo%")


def _partitions(topic: str) -> list[dict]:
    """Each partition of ``topic``: its leader, replicas and in-sync replicas, as the cluster says now."""

    async def run() -> list[dict]:
        admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], request_timeout_ms=10000)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
            return sorted(({"partition": p["partition"], "leader": p["leader"], "replicas": sorted(p["replicas"]),
                            "isr": sorted(p["isr"])} for p in described["partitions"]), key=lambda p: p["partition"])
        finally:
            await admin.close()

    return asyncio.run(run())


def test_stopping_the_intake_leader_mid_storm_loses_nothing_and_intake_keeps_answering(platform, tokens, unique):
    before = _partitions("alerts.intake")
    assert all(len(p["replicas"]) == 3 and len(p["isr"]) == 3 for p in before), before
    led = Counter(p["leader"] for p in before)
    victim = led.most_common(1)[0][0]  # the broker that leads the most of alerts.intake's partitions
    victim_partitions = [p["partition"] for p in before if p["leader"] == victim]

    groups = _groups(unique)
    stream = Stream(groups, STREAM_SECONDS)
    intake_offsets = end_offsets("alerts.intake")
    pids = {name: platform.child_pid(name) for name in KAFKA_SERVICES}
    with ThreadPoolExecutor(max_workers=1) as background:
        sending = background.submit(stream.run, platform.api_url, tokens["integration"])
        wait_until(lambda: len(stream.accepted) >= 1000 or sending.done(), timeout=60, interval=0.2,
                   what="the first 1,000 alerts accepted")
        assert not sending.done(), "the storm ended before the broker was stopped: make it longer"
        stopping = time.monotonic()
        stopped = stop_cluster_broker(victim)
        # The other two took over: every partition of alerts.intake has a live leader.
        during = wait_until(lambda: (p := _partitions("alerts.intake")) and all(
            x["leader"] not in (victim, -1) for x in p) and p, timeout=30, interval=0.2,
            what=f"new leaders for the partitions broker {victim} led")
        leaders_moved = time.monotonic()
        time.sleep(max(0.0, AWAY_SECONDS - (leaders_moved - stopped)))  # the outage itself: the broker stays away this long
        restarting = time.monotonic()
        start_stack()
        back = time.monotonic()
        sending.result()
    # The restarted broker catches up and is a full copy again.
    wait_until(lambda: all(len(p["isr"]) == 3 for p in _partitions("alerts.intake")), timeout=60, interval=0.5,
               what=f"broker {victim} back in sync on alerts.intake")
    in_sync_again = time.monotonic()

    accepted = stream.accepted
    on_log = Counter(m.get("dedup_key") for m in read_from("alerts.intake", intake_offsets)
                     if str(m.get("dedup_key", "")).startswith(f"{unique}-fo"))
    last: dict = {}

    def accounted():
        rows = last["rows"] = _references(unique)
        counted = Counter()
        for row in rows:
            counted[row["fingerprint"]] += row["count"]
        return all(counted[fp] >= max(n, on_log[fp]) for fp, n in accepted.items())

    try:
        wait_until(accounted, timeout=120, interval=0.5, what="every accepted alert on its incident")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {len(last.get('rows', []))} of {len(accepted)} references found") from None
    recovered = time.monotonic()
    platform.wait_ready(*KAFKA_SERVICES, timeout=60)

    responses = stream.responses
    away = [r for r in responses if stopping <= r.sent_at <= back]
    after_stop = [r for r in responses if r.sent_at >= stopping]
    statuses = Counter(r.status for r in responses)
    first_2xx_after_stop = min((r.sent_at + r.seconds for r in after_stop if r.status == 202), default=None)
    rows = _references(unique)
    incidents_of: dict[str, set[str]] = {}
    counted, places = Counter(), Counter()
    for row in rows:
        incidents_of.setdefault(row["name"], set()).add(row["incident_id"])
        counted[row["fingerprint"]] += row["count"]
        places[row["fingerprint"]] += 1
    incident_ids = sorted({row["incident_id"] for row in rows})
    alert_counts = {row["incident_id"]: row["alert_count"] for row in sql(
        "SELECT incident_id, alert_count FROM incidents WHERE incident_id = ANY($1)", incident_ids)}
    expected_per_incident = Counter()
    for row in rows:
        expected_per_incident[row["incident_id"]] += on_log[row["fingerprint"]]
    resent = {a["fingerprint"] for r in responses if r.status != 202 for a in groups[r.group]}
    doubled = sorted(fp for fp, n in on_log.items() if n > accepted.get(fp, 0))

    figures = {
        "stopped_broker": victim,
        "its_intake_partitions": victim_partitions,
        "leaders_before": {p["partition"]: p["leader"] for p in before},
        "leaders_while_away": {p["partition"]: p["leader"] for p in during},
        "alerts_sent": NAMES * PER_NAME,
        "requests": len(groups),
        "attempts": len(responses),
        "alerts_accepted_2xx": len(accepted),
        "answers": {str(k): v for k, v in statuses.items()},
        "answered_503_while_broker_away": sum(r.status == 503 for r in away),
        "answered_2xx_while_broker_away": sum(r.status == 202 for r in away),
        "first_2xx_after_stop_s": round(first_2xx_after_stop - stopping, 2) if first_2xx_after_stop else None,
        "worst_response_while_away_s": round(max((r.seconds for r in away), default=0.0), 3),
        "no_answer_within_client_timeout": statuses[None],
        "broker_stop_s": round(stopped - stopping, 1),
        "new_leaders_after_exit_s": round(leaders_moved - stopped, 2),
        "broker_away_s": round(back - stopped, 1),
        "broker_start_s": round(back - restarting, 1),
        "back_in_sync_after_start_s": round(in_sync_again - back, 1),
        "accepted_not_on_log": len(set(accepted) - set(on_log)),
        "stored_though_answered_503": len(doubled),
        "counted_unlike_the_log": sum(1 for fp in accepted if counted[fp] != on_log[fp] or places[fp] != 1),
        "accounted_for": sum(1 for fp, n in accepted.items() if counted[fp] == n and places[fp] == 1),
        "lost": sum(1 for fp in accepted if counted[fp] == 0),
        "incidents": len(incident_ids),
        "duplicate_incidents": sum(len(ids) - 1 for ids in incidents_of.values()),
        "incident_alert_count_mismatches": sum(1 for i in incident_ids
                                               if alert_counts.get(i) != expected_per_incident[i]),
        "all_accounted_after_broker_back_s": round(recovered - back, 1),
        "all_accounted_after_stop_s": round(recovered - stopping, 1),
        "restarted_services": [name for name in KAFKA_SERVICES if platform.child_pid(name) != pids[name]],
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }
    print("CLUSTER-FAILOVER FIGURES " + json.dumps(figures, sort_keys=True))
    said = f"figures: {json.dumps(figures, sort_keys=True)}"

    # A failover happened: the stopped broker led partitions, and others lead them meanwhile.
    assert victim_partitions and all(during_p["leader"] != victim for during_p in during), said
    # Everything was taken in the end, and intake never hung: 202, or 503 at once.
    assert len(accepted) == NAMES * PER_NAME and set(accepted.values()) == {1}, said
    assert set(statuses) <= {202, 503} and statuses[None] == 0, said
    assert figures["worst_response_while_away_s"] < CLIENT_TIMEOUT, said
    # With two copies in sync left, intake goes on taking alerts while the broker is away.
    assert figures["answered_2xx_while_broker_away"] > 0, said
    # A 2xx means on the log; nothing lost, nothing counted twice, one incident per key.
    assert figures["accepted_not_on_log"] == 0 and figures["lost"] == 0, said
    assert figures["counted_unlike_the_log"] == 0, said
    assert len(incidents_of) == NAMES and figures["duplicate_incidents"] == 0, said
    assert figures["incident_alert_count_mismatches"] == 0, said
    assert set(doubled) <= resent and len(doubled) <= MAX_STORED_THOUGH_503, said
    assert figures["accounted_for"] == NAMES * PER_NAME - len(doubled), said


def _topology(**env: str) -> subprocess.CompletedProcess:
    """services.topology (what make up and every service run first) with these settings."""
    return subprocess.run([sys.executable, "-m", "services.topology"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_more_copies_than_the_cluster_has_brokers_stops_naming_the_setting():
    # A fresh app prefix: its changelogs do not exist yet, so they would have to be created.
    result = _topology(APP_PREFIX=f"too-many-{os.getpid()}", TOPIC_REPLICATION="4", TOPIC_MIN_INSYNC_REPLICAS="2")
    assert result.returncode != 0, result.stdout
    assert "TOPIC_REPLICATION is 4 but the cluster has 3 broker(s)" in result.stderr, result.stderr[-2000:]


def test_existing_topics_with_other_replication_stop_naming_the_setting():
    made = _topology()  # the cluster's own settings (stack.env: 3 copies): every topic there
    assert made.returncode == 0, made.stderr[-2000:]
    assert all(len(p["replicas"]) == 3 for p in _partitions("alerts.intake"))
    result = _topology(TOPIC_REPLICATION="1", TOPIC_MIN_INSYNC_REPLICAS="1")
    assert result.returncode != 0, result.stdout
    assert "TOPIC_REPLICATION does not match the existing topics" in result.stderr, result.stderr[-2000:]
    assert "has 3 replicas, the configuration expects 1" in result.stderr
