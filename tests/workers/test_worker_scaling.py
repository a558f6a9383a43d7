"""Several workers per service (WORKERS=2), against the real broker and PostgreSQL.

1. The same storm (5,000 alerts over 50 correlation keys, with acknowledgements and
   resolutions in the middle, whose recurrences reopen) gives the same result with one
   worker per service and with two: the incidents, their alert counts, their audit versions,
   their notifications and the metrics, compared field by field.
2. With two workers, one triage worker is SIGKILLed (its supervisor too, so that it stays
   down) in the middle of a storm: its partitions move to the other worker, which rebuilds
   their table state from the changelogs; nothing is lost, no incident is duplicated, and
   the time to hand over is measured.
3. Prometheus, on the configuration make up WORKERS=2 writes, scrapes every worker.
4. Each of two metrics workers, owning half the partitions, exports every incident's numbers,
   the same as the other's and as PostgreSQL's.

Alerts go to every ingestion worker in turn (two intake processes on their own ports).
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx

from fault_accounting import Accounting, intake_copies
from harness import sql, sql_snapshot, wait_until
from metrics_queries import differences, exported, from_database, scrape, wait_for_agreement
from pipeline_lag import consumer_lag
from prometheus_process import running_prometheus
from services.group_status import describe, owned
from services.workers import process_names

KEYS, HOSTS, ALERTS = 50, 4, 5_000
BATCH = 50
ACKNOWLEDGED, RESOLVED = range(0, 10), range(10, 15)  # keys acknowledged / resolved between the halves
PREFIX = "incident-test"
# Means and rates over every incident of the window (earlier runs' too): their change is no sum
# of this storm's parts, and the means hold its timings. Their inputs (the counts) are compared.
RATIOS = {"mttr_minutes", "reopen_rate", "time_to_acknowledge_minutes", "postmortem_completion_rate"}


def _alerts(run: str, seqs: range) -> list[dict]:
    return [{
        "service": f"wk-{run}", "summary": f"W{seq % KEYS} firing", "severity": "warning",
        "labels": {"alertname": f"W{run}-{seq % KEYS}", "instance": f"host-{(seq // KEYS) % HOSTS}"},
        "annotations": {"run": run, "seq": str(seq)},
    } for seq in seqs]


def _intake_urls(platform) -> list[str]:
    return [f"http://127.0.0.1:{platform.port('INGESTION_PORT', name)}"
            for name in platform.procs if name.split("-")[0] == "ingestion"]


def _send(urls: list[str], key: str, alerts: list[dict], senders: int = 4, pause: float = 0.0,
          accepted: list | None = None) -> list[int]:
    """Batches of BATCH alerts from ``senders`` threads, each sender on the next intake in turn.
    A batch without an answer (a connection refused) is sent again, as a monitoring system would."""
    batches = [alerts[i:i + BATCH] for i in range(0, len(alerts), BATCH)]

    def sender(index: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=urls[index % len(urls)], headers={"Authorization": f"Bearer {key}"},
                          timeout=60) as client:
            for batch in batches[index::senders]:
                while True:
                    try:
                        code = client.post("/v1/alerts", json=batch).status_code
                    except httpx.HTTPError:
                        code = None
                    if code is not None and code < 500:
                        break
                    time.sleep(0.2)  # the intake is unavailable: back off, then send again
                codes.append(code)
                if accepted is not None and code == 202:
                    accepted.append(len(batch))
                if pause:
                    time.sleep(pause)  # the storm's pace, so a kill lands in its middle
        return codes

    with ThreadPoolExecutor(max_workers=senders) as pool:
        return [code for codes in pool.map(sender, range(senders)) for code in codes]


def _counted(run: str) -> int:
    [row] = sql("SELECT coalesce(sum(alert_count), 0) AS n FROM incidents WHERE service = $1", f"wk-{run}")
    return row["n"]


def _incidents(run: str) -> dict[int, str]:
    rows = sql("SELECT incident_id, record->'labels'->>'alertname' AS name FROM incidents WHERE service = $1",
               f"wk-{run}")
    return {int(row["name"].rsplit("-", 1)[1]): row["incident_id"] for row in rows}


def _command(admin: httpx.Client, incident_id: str, action: str) -> None:
    response = admin.post(f"/v1/incidents/{incident_id}/{action}", json={"note": "workers test"})
    assert response.status_code == 200, (action, response.status_code, response.text)


def _drained(what: str, timeout: float = 240) -> None:
    """Every consumer group of the platform has committed up to the end of its topics."""
    wait_until(lambda: not any(consumer_lag(PREFIX).values()), timeout=timeout, interval=1.0, what=what)


def _metrics(platform) -> dict[str, dict[tuple, float]]:
    """The exporter's samples once they agree with PostgreSQL: with two metrics workers the first
    one's /metrics reads a mirror of the changelogs, a fetch behind the tables' writes."""
    wait_for_agreement(platform, timeout=60)
    return wait_until(lambda: scrape(platform), timeout=60, what="the metrics exporter to answer")


def _normal(run: str, labels: tuple) -> tuple:
    return tuple((k, v.replace(run, "RUN")) for k, v in labels)


def _metric_delta(before: dict, after: dict, run: str) -> dict:
    """What the storm changed in the exported metrics, its own service's labels made run-free."""
    delta = {}
    for name, series in after.items():
        if name.endswith("_created") or name.startswith(("process_", "python_", "heartbeat_")) or name in RATIOS:
            continue
        for labels, value in series.items():
            change = value - before.get(name, {}).get(labels, 0.0)
            if change:
                delta[(name, _normal(run, labels))] = round(change, 6)
    return delta


def _result(run: str) -> dict:
    """The storm's outcome as the records hold it, with the run's names taken out."""
    incidents, events, notes = sql_snapshot(
        ("SELECT incident_id, record->'labels'->>'alertname' AS name, status, severity, alert_count, version,"
         " (record->>'distinct_alerts')::int AS distinct_alerts FROM incidents WHERE service = $1", (f"wk-{run}",)),
        ("SELECT a.incident_id, a.version, a.change, a.data FROM audit_events a JOIN incidents i USING (incident_id)"
         " WHERE i.service = $1 ORDER BY a.incident_id, a.version", (f"wk-{run}",)),
        ("SELECT c.incident_id, c.channel, c.kind, c.status FROM communications c JOIN incidents i USING (incident_id)"
         " WHERE i.service = $1 AND c.direction = 'notification'", (f"wk-{run}",)),
    )
    key_of = {row["incident_id"]: int(row["name"].rsplit("-", 1)[1]) for row in incidents}
    by_key: dict[int, dict] = {}
    for row in incidents:
        key = key_of[row["incident_id"]]
        entry = by_key.setdefault(key, {"incidents": 0, "changes": [], "notifications": {}})
        entry["incidents"] += 1
        entry.update(status=row["status"], severity=row["severity"], alert_count=row["alert_count"],
                     distinct_alerts=row["distinct_alerts"], latest=row["version"])
    versions: dict[int, list[int]] = defaultdict(list)
    for event in events:
        key = key_of[event["incident_id"]]
        versions[key].append(event["version"])
        if event["change"] != "alerts_attached":
            # What happened to the incident, in order. How many versions the alerts took depends on
            # the batches (each worker's batch boundaries): that the chain is whole is checked instead.
            by_key[key]["changes"].append(event["change"])
    for key, entry in by_key.items():
        # The audit chain: every version once, no gap, ending at the incident's version.
        entry["audit_versions_whole"] = versions[key] == list(range(1, entry.pop("latest") + 1))
    told = Counter((key_of[n["incident_id"]], n["channel"], n["kind"], n["status"]) for n in notes)
    for (key, channel, kind, status), count in told.items():
        by_key[key]["notifications"][f"{channel}/{kind}/{status}"] = count
    return by_key


def _storm(platform, tokens, run: str) -> tuple[dict, dict, dict]:
    """5,000 alerts in two halves, commands between them; the outcome, the metric deltas, figures."""
    urls = _intake_urls(platform)
    admin = httpx.Client(base_url=urls[0], headers={"Authorization": f"Bearer {tokens['platform-admin']}"}, timeout=60)
    _drained("the platform idle before the storm")
    before = _metrics(platform)
    half = ALERTS // 2
    started = time.monotonic()
    codes = _send(urls, tokens["integration"], _alerts(run, range(0, half)))
    wait_until(lambda: _counted(run) >= half, timeout=240, interval=0.5, what="the first half counted")
    first_half = time.monotonic() - started
    incidents = _incidents(run)
    assert len(incidents) == KEYS
    for key in ACKNOWLEDGED:
        _command(admin, incidents[key], "acknowledge")
    for key in RESOLVED:
        _command(admin, incidents[key], "resolve")
    second = time.monotonic()
    codes += _send(urls, tokens["integration"], _alerts(run, range(half, ALERTS)))
    wait_until(lambda: _counted(run) >= ALERTS, timeout=240, interval=0.5, what="the second half counted")
    second_half = time.monotonic() - second
    assert set(codes) == {202}, Counter(codes)
    _drained("every consumer caught up after the storm")
    after = _metrics(platform)
    admin.close()
    figures = {"first_half_s": round(first_half, 1), "second_half_s": round(second_half, 1),
               "alerts_per_s": round(half / first_half), "intakes": len(urls),
               "load": open("/proc/loadavg").read().split()[:3]}
    return _result(run), _metric_delta(before, after, run), figures


def test_the_same_storm_gives_the_same_result_with_one_and_two_workers(cluster, tokens):
    unique = os.urandom(3).hex()
    outcomes = {}
    for workers in (1, 2):
        platform = cluster.run(workers)
        outcomes[workers] = _storm(platform, tokens, f"{unique}w{workers}")
        print(f"\nWORKERS {workers}: storm {outcomes[workers][2]}", flush=True)
    (one, one_metrics, _), (two, two_metrics, _) = outcomes[1], outcomes[2]

    # The storm did what it should: one incident per key, every alert counted, commands applied.
    assert sorted(one) == list(range(KEYS))
    wrong = {k: v for k, v in one.items() if not (v["incidents"] == 1 and v["alert_count"] == ALERTS // KEYS
                                                  and v["audit_versions_whole"])}
    assert not wrong, wrong
    assert {one[k]["distinct_alerts"] for k in range(KEYS) if k not in RESOLVED} == {HOSTS}, one
    assert {one[k]["status"] for k in ACKNOWLEDGED} == {"acknowledged"}
    assert {one[k]["status"] for k in RESOLVED} == {"triggered"}  # reopened by the recurrence
    # Resolved between the halves, reopened by the second half's alerts (then paged again).
    unreopened = {k: one[k]["changes"] for k in RESOLVED
                  if "reopened" not in one[k]["changes"] or "resolved" not in one[k]["changes"]
                  or one[k]["changes"].index("reopened") < one[k]["changes"].index("resolved")}
    assert not unreopened, unreopened
    # The same, field by field, with two workers.
    for key in range(KEYS):
        assert two.get(key) == one[key], (key, one[key], two.get(key))
    assert two_metrics == one_metrics, {k: (one_metrics.get(k), two_metrics.get(k))
                                        for k in set(one_metrics) | set(two_metrics)
                                        if one_metrics.get(k) != two_metrics.get(k)}
    assert sum(v for (name, _), v in one_metrics.items() if name == "alerts_received_total") == ALERTS, one_metrics
    assert sum(v for (name, _), v in one_metrics.items() if name == "incidents_opened_total") == KEYS, one_metrics
    assert sum(v for (name, _), v in one_metrics.items() if name == "incidents_reopened_total") == len(RESOLVED)


def test_prometheus_scrapes_every_worker(cluster, tmp_path):
    platform = cluster.run(2)
    port = 19195 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
    expected = {(service, str(worker) if worker else None) for _, service, worker in process_names(2) if service != "web"}
    with running_prometheus(tmp_path, port, platform.env, platform.logs, workers=2) as prometheus:
        def every_worker_up():
            series = {(labels["service"], labels.get("worker")): value
                      for labels, value in prometheus.vector('up{job="incident-platform"}')}
            return series if set(series) == expected and all(series.values()) else None

        up = wait_until(every_worker_up, timeout=60, what=f"all {len(expected)} processes up in prometheus")
        # Each worker's own process, not one worker's twice: two series from two addresses (a
        # port has one process). Not their start times: two workers the supervisor starts in the
        # same 10 ms tick report the same process_start_time_seconds.
        instances = {(labels["service"], labels.get("worker")): labels["instance"]
                     for labels, _ in prometheus.vector('process_start_time_seconds{service="triage"}')}
    assert ("triage", "2") in up and len(instances) == 2 and len(set(instances.values())) == 2, instances


def test_each_metrics_worker_exports_every_incidents_numbers(cluster, tokens):
    platform = cluster.run(2)
    groups = asyncio.run(describe(os.environ["KAFKA_BOOTSTRAP"], PREFIX))
    (metrics_group,) = [g for g in groups if g[1] == f"{PREFIX}-metrics" and g[2] == "Stable"]
    shares = {member[1]: owned(member[4], 4)[0] for member in metrics_group[5]}
    assert len(shares) == 2 and all(shares.values()), shares  # the counting is shared
    # Some numbers to agree on, should the storms not have run first.
    codes = _send(_intake_urls(platform), tokens["integration"], _alerts(os.urandom(3).hex() + "m", range(200)))
    assert set(codes) == {202}, Counter(codes)
    second = f"http://127.0.0.1:{platform.port('METRICS_PORT', 'metrics-2')}/metrics"
    last: dict = {}

    def agree():
        one, two = scrape(platform), scrape(platform, second)
        if one is None or two is None:
            return None
        mine, theirs, database = exported(one), exported(two), from_database()
        last.update(workers=differences(mine, theirs), database=differences(mine, database))
        return mine if not last["workers"] and not last["database"] else None

    try:
        numbers = wait_until(agree, timeout=120, interval=0.5, what="both metrics workers to agree with PostgreSQL")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last}") from None
    assert numbers["incidents_open"], numbers  # the alerts just sent opened incidents, and both count them


def _triage_members() -> dict[str, list[int]]:
    """The triage group's members (client id -> the keyed partitions each owns), as the broker says."""
    groups = asyncio.run(describe(os.environ["KAFKA_BOOTSTRAP"], PREFIX))
    for group in groups:
        if group[1] == f"{PREFIX}-triage" and group[2] == "Stable":
            return {member[1]: owned(member[4], 4)[0] for member in group[5]}
    return {}


def test_a_triage_worker_killed_mid_storm_hands_over_to_the_other(cluster, tokens):
    platform = cluster.run(2)
    run = os.urandom(3).hex() + "kill"
    partitions = int(platform.env.get("TOPIC_PARTITIONS", "4"))
    members = wait_until(lambda: (m := _triage_members()) and len(m) == 2 and m, timeout=60,
                         what="two triage workers in the group")
    assert all(members.values()) and sorted(set().union(*members.values())) == list(range(partitions)), members
    _drained("the platform idle before the storm")
    since = time.time() - 1
    accepted: list[int] = []
    sent_codes: list[int] = []
    storm = threading.Thread(target=lambda: sent_codes.extend(
        _send(_intake_urls(platform), tokens["integration"], _alerts(run, range(ALERTS)), senders=2, pause=0.05,
              accepted=accepted)))
    began = time.monotonic()
    storm.start()
    try:
        wait_until(lambda: sum(accepted) >= ALERTS // 4, timeout=120, what="a quarter of the storm accepted")
        wait_until(lambda: _counted(run) > 0, timeout=60, what="triage counting the storm")
        victim = platform.procs["triage-1"]
        child = platform.child_pid("triage-1")
        killed = time.monotonic()
        at_kill = sum(accepted)
        os.kill(victim.pid, signal.SIGKILL)  # the supervisor: its child dies with it (PDEATHSIG), not restarted
        wait_until(lambda: victim.poll() is not None, timeout=10, what="triage-1's supervisor gone")
        wait_until(lambda: not os.path.exists(f"/proc/{child}") or "Z" in open(f"/proc/{child}/stat").read().split()[2],
                   timeout=10, what="triage-1 gone")
        survivor = next(name for name in members if name.endswith("-triage-2"))
        handed = wait_until(lambda: (m := _triage_members()) and set(m) == {survivor}
                            and m[survivor] == list(range(partitions)) and m, timeout=90, interval=0.2,
                            what="triage-2 owning every partition")
        handover = time.monotonic() - killed
        # The survivor works on the dead worker's partitions: their incidents keep counting.
        resumed_from = _counted(run)
        wait_until(lambda: _counted(run) > resumed_from, timeout=60, what="counting resumed after the hand-over")
        resumed = time.monotonic() - killed
        print(f"\nWORKERS hand-over: triage-1 SIGKILLed after {at_kill} alerts accepted; {survivor} owned all "
              f"{partitions} partitions {handover:.1f}s later (session timeout 6 s), counting resumed at {resumed:.1f}s;"
              f" load {open('/proc/loadavg').read().split()[:3]}", flush=True)
    finally:
        storm.join(timeout=300)
    assert not storm.is_alive()
    assert set(sent_codes) == {202}, Counter(sent_codes)
    # The survivor rebuilds the dead worker's tables from their changelogs (memory store) first.
    wait_until(lambda: _counted(run) >= ALERTS, timeout=480, interval=0.5, what="every alert counted")
    drained = time.monotonic() - began
    _drained("every consumer caught up after the storm")
    names = [f"W{run}-{k}" for k in range(KEYS)]
    books = Accounting.read(intake_copies(run, since), names)
    totals = books.totals()
    log = platform.log_path("triage-2").read_bytes()[platform.log_offsets.get("triage-2", 0):]
    restarts = log.count(b"supervisor triage-2: ended with")
    print(f"\nWORKERS hand-over: storm of {ALERTS} drained {drained:.1f}s after it began; {totals}; triage-2 restarted"
          f" by its supervisor {restarts} times; load {open('/proc/loadavg').read().split()[:3]}", flush=True)
    assert handed[survivor] == list(range(partitions))
    assert handover < 6.0 + 24.0, f"hand-over took {handover:.1f}s"
    # Nothing lost, nothing twice, no duplicate incident: the correlation state moved with the partitions.
    copies = sum(len(c) for c in books.copies.values())  # a batch sent again after a 5xx may be there twice
    assert len(books.copies) == ALERTS, len(books.copies)
    assert all(books.on_incident(seq) for seq in books.copies), "an accepted alert not counted exactly once"
    assert totals["incidents"] == KEYS and totals["duplicate_incidents"] == 0, (totals, books.incidents)
    assert totals["double_counted"] == 0 and totals["audit_row_duplicates"] == 0, totals
    assert totals["alert_count_sum"] == copies == totals["alerts_counted"], (totals, copies)
