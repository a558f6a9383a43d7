"""The recorder as its own process: readiness through its own consumer, SIGKILL mid-stream, a
PostgreSQL restart under it, a refused message dead-lettered alone."""
from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from audit_events import alerts_attached, encoded, ref, synthetic_id
from harness import REPO, read_topic, sql, wait_until

HOSTS = 20


def produce_all(events: list[dict]) -> None:
    """Publish audit events keyed by incident (as triage does) and wait for every acknowledgement."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send("incident.audit", value, key=key.encode())
                       for key, value in map(encoded, events)]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def stream(ids: list[str], versions: range, service: str) -> list[dict]:
    return [alerts_attached(i, service, v, [ref(f"host-{v % HOSTS}", (v + HOSTS - 1) // HOSTS)], alert_count=v,
                            distinct=min(v, HOSTS))
            for v in versions for i in ids]


def recorded(ids: list[str]) -> int:
    return sql("SELECT count(*) AS n FROM audit_events WHERE incident_id = ANY($1::text[])", ids)[0]["n"]


def assert_exactly(ids: list[str], last: int) -> None:
    """Every event once, every incident at its last version, every reference at its last count."""
    per_incident = {r["incident_id"]: (r["n"], r["top"]) for r in sql(
        "SELECT incident_id, count(*) AS n, max(version) AS top FROM audit_events"
        " WHERE incident_id = ANY($1::text[]) GROUP BY incident_id", ids)}
    assert per_incident == {i: (last, last) for i in ids}
    rows = sql("SELECT incident_id, version, alert_count FROM incidents WHERE incident_id = ANY($1::text[])", ids)
    assert {(r["version"], r["alert_count"]) for r in rows} == {(last, last)} and len(rows) == len(ids)
    expected = {f"host-{h}": (max(v for v in range(1, last + 1) if v % HOSTS == h) + HOSTS - 1) // HOSTS
                for h in range(HOSTS)}
    for incident_id in ids:
        refs = {r["fingerprint"]: r["count"] for r in sql(
            "SELECT fingerprint, count FROM incident_alerts WHERE incident_id = $1", incident_id)}
        assert refs == expected, incident_id
    stats = sql("SELECT stored, truncated FROM incident_alert_stats WHERE incident_id = ANY($1::text[])", ids)
    assert {(s["stored"], s["truncated"]) for s in stats} == {(HOSTS, False)}


def test_the_recorder_answers_readiness_through_its_own_consumer_and_ingestion_does_not_need_it(platform):
    ready = httpx.get(f"{platform.recorder_url}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True and "partition" in ready.json()
    assert "process_cpu_seconds_total" in httpx.get(f"{platform.recorder_url}/metrics", timeout=10).text
    intake_ready = httpx.get(f"{platform.api_url}/readyz", timeout=10).json()
    assert "recorder" not in intake_ready and intake_ready["probe"]["ready"] is True


def test_a_recorder_killed_mid_stream_loses_and_duplicates_nothing(platform, unique):
    ids = [synthetic_id() for _ in range(10)]
    service = f"rec-kill-{unique}"
    produce_all(stream(ids, range(1, 101), service))
    wait_until(lambda: recorded(ids) > 0, timeout=60, what="the recorder to start on the stream")
    platform.kill("recorder")  # SIGKILL: no shutdown, offsets of the batch in hand not committed
    produce_all(stream(ids, range(101, 301), service))  # the stream goes on while it restarts
    platform.wait_ready("recorder")
    wait_until(lambda: recorded(ids) >= 3000, timeout=120, what="all 3,000 events recorded")
    assert_exactly(ids, 300)


def _postgres() -> tuple[Path, str, Path]:
    """The test cluster's data directory, its owner, and its server binaries (see stack.sh)."""
    home = (REPO / ".local" / "test" / "postgres").resolve()
    data = (home / "data").resolve()
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    version = (data / "PG_VERSION").read_text().strip()
    return data, owner, Path(f"/usr/lib/postgresql/{version}/bin")


def pg_ctl(action: str) -> None:
    data, owner, bindir = _postgres()
    command = [str(bindir / "pg_ctl"), action, "-D", str(data), "-w", "-t", "60", "-s"]
    if action == "stop":
        command += ["-m", "fast"]
    else:
        # The server log stack.sh gave it (owned by the cluster's user; pg_ctl appends).
        command += ["-l", str((REPO / ".local" / "test" / "logs" / "postgres.log").resolve())]
    if owner != pwd.getpwuid(os.geteuid()).pw_name:
        command = ["runuser", "-u", owner, "--", *command]
    subprocess.run(command, check=True, cwd="/", timeout=90)


def postgres_answers() -> bool:
    try:
        sql("SELECT 1")
    except (OSError, Exception):  # noqa: BLE001 - any failure to connect is "not yet"
        return False
    return True


def test_the_recorder_keeps_running_across_a_postgresql_restart(platform, unique):
    ids = [synthetic_id() for _ in range(5)]
    service = f"rec-pg-{unique}"
    before = platform.child_pid("recorder")
    pg_ctl("stop")
    try:
        produce_all(stream(ids, range(1, 101), service))
        # It notices, says so on /readyz, and waits with the batch in hand.
        wait_until(lambda: "PostgreSQL unavailable" in httpx.get(f"{platform.recorder_url}/readyz", timeout=10).text,
                   timeout=30, what="the recorder to report PostgreSQL away")
        assert platform.child_pid("recorder") == before
    finally:
        pg_ctl("start")
        wait_until(postgres_answers, timeout=60, what="PostgreSQL to accept connections again")
    wait_until(lambda: recorded(ids) >= 500, timeout=90, what="the batch held during the outage recorded")
    assert_exactly(ids, 100)
    assert platform.child_pid("recorder") == before, "the recorder rode out the restart without being restarted"
    log = platform.log_path("recorder").read_text(errors="replace")
    assert "PostgreSQL unavailable" in log and "PostgreSQL is back" in log
    platform.wait_ready()  # every service again, for the tests after this one


def test_a_message_postgresql_refuses_is_dead_lettered_alone(platform, unique):
    incident_id = synthetic_id()
    service = f"rec-dead-{unique}"
    events = [alerts_attached(incident_id, service, v, [ref("host-1", v)], alert_count=v) for v in range(1, 11)]
    poison = alerts_attached(incident_id, service, 11, [ref("host-1", 11)], alert_count=11)
    poison["version"] = 3_000_000_000  # beyond PostgreSQL's integer: refused for this row only
    poison["event_id"] = f"{incident_id}/v-poison"
    produce_all([*events[:5], poison, *events[5:]])
    wait_until(lambda: recorded([incident_id]) >= 10, timeout=60, what="the ten good events recorded")
    letters = read_topic("dead-letter", lambda m: m.get("key") == incident_id,
                         until=lambda found: len(found) >= 1, timeout=30)
    assert len(letters) == 1 and letters[0]["service"] == "recorder"
    assert letters[0]["source_topic"] == "incident.audit" and "rejected by PostgreSQL" in letters[0]["reason"]
    assert "v-poison" in letters[0]["payload"]
    assert recorded([incident_id]) == 10


def test_a_failing_recorder_loop_takes_its_process_down_and_the_supervisor_restarts_it(platform, unique):
    incident_id = synthetic_id()
    before = platform.child_pid("recorder")
    sql("ALTER TABLE audit_events RENAME TO audit_events_away")  # a broken deployment, not a bad row
    try:
        produce_all([alerts_attached(incident_id, f"rec-crash-{unique}", 1, [ref("host-1", 1)], alert_count=1)])
        wait_until(lambda: platform.child_pid("recorder") not in (None, before), timeout=60,
                   what="the recorder process to exit and be started again")
    finally:
        sql("ALTER TABLE audit_events_away RENAME TO audit_events")
    platform.wait_ready("recorder")
    wait_until(lambda: recorded([incident_id]) == 1, timeout=60, what="the event recorded once the table is back")
    log = platform.log_path("recorder").read_text(errors="replace")
    assert "recorder loop failed: UndefinedTableError" in log
    letters = read_topic("dead-letter", lambda m: m.get("key") == incident_id, timeout=5)
    assert letters == [], "a broken deployment is not blamed on the message"
