"""The platform under test: the services (the recorder and the console included) as real processes on the test broker and database.

``make test`` starts Kafka and PostgreSQL (test profile) and exports KAFKA_BOOTSTRAP
and DATABASE_URL; this module starts the services with the test organisation,
waits for readiness, and gives tests ways to read topics, query the database,
and stop or kill a service mid-flight.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.workers import parse_name, port_shift

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")
TEST_CONFIG = Path(__file__).with_name("organisation.yaml")
# The stack the suite runs on: make test's one broker (profile test, state .local/test), or
# make test-cluster's three (deploy/scripts/test-cluster.sh sets both).
TEST_PROFILE = os.environ.get("INCIDENT_TEST_PROFILE", "test")
TEST_STATE = Path(os.environ.get("INCIDENT_TEST_STATE") or REPO / ".local" / "test")
# Every token and integration key this run made: none may appear in a service's log
# (tests/integration/test_zz_secrets_never_logged.py reads the logs at the end of the run).
CREATED_SECRETS: list[str] = []


def remember_secret(secret: str) -> str:
    CREATED_SECRETS.append(secret)
    return secret


def incidentctl(api_url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    """The installed incidentctl as a shell runs it, with only this API and token (no credentials file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    env.update(INCIDENT_API_URL=api_url, INCIDENT_TOKEN=token, INCIDENT_CREDENTIALS="/nonexistent")
    return subprocess.run([str(Path(sys.executable).with_name("incidentctl")), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def remember_pid(logs: Path, pid: int) -> None:
    """test.sh stops whatever is listed here if pytest itself is killed."""
    with open(logs.parent / "run" / "harness.pids", "a") as pids:
        pids.write(f"{pid}\n")


def end_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Stop ``proc`` with ``sig``, then SIGKILL should it not exit within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_while_progressing(measure: Callable[[], Any], done: Callable[[Any], bool], what: str,
                           amount: Callable[[Any], float] = lambda value: value,
                           stall: float = 90.0, limit: float = 1200.0, interval: float = 1.0):
    """Poll ``measure`` until ``done`` holds for what it returns, for as long as its ``amount``
    keeps growing.

    For a backlog drained at the machine's speed: it fails when ``measure`` has not grown for
    ``stall`` seconds (a stall, however fast the machine) or after ``limit`` in all, not after a
    time that a slower machine needs more of (the 20,000-alert storm took 294 s of a fixed 300
    on a loaded 2-core machine, with nothing wrong)."""
    start = time.monotonic()
    best, grew = None, start
    while True:
        value = measure()
        if done(value):
            return value
        now = time.monotonic()
        if best is None or amount(value) > best:
            best, grew = amount(value), now
        if now - grew > stall or now - start > limit:
            why = f"no progress for {now - grew:.0f}s" if now - grew > stall else f"{limit:.0f}s in all"
            raise AssertionError(f"gave up waiting for {what} after {now - start:.0f}s ({why}): {best} so far")
        time.sleep(interval)


def sql(query: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            return [dict(row) for row in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def sql_snapshot(*queries: tuple[str, tuple]) -> list[list[dict[str, Any]]]:
    """Several queries read as of one moment (one repeatable-read transaction).

    Separate statements race the recorder: a batch committed between them shows in one
    read and not in the other (an incident's alert_count one short of its audit events)."""
    async def run() -> list[list[dict[str, Any]]]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [[dict(row) for row in await conn.fetch(query, *args)] for query, args in queries]
        finally:
            await conn.close()

    return asyncio.run(run())


def read_topic(topic: str, predicate: Callable[[dict], bool] | None = None, *, until: Callable[[list[dict]], bool] | None = None,
               timeout: float = 20.0) -> list[dict]:
    """Every JSON message on ``topic`` from the beginning (value plus ``_key``), filtered by ``predicate``.

    With ``until``, keeps reading (re-reading new messages) until ``until(matches)`` is true or the timeout.
    """

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await _partitions(consumer, topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            matches: list[dict] = []
            deadline = time.monotonic() + timeout
            while True:
                end = await consumer.end_offsets(partitions)
                while await _behind(consumer, partitions, end):
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            try:
                                value = json.loads(record.value)
                            except ValueError:
                                continue  # poison some test produced on purpose: not a JSON message
                            if not isinstance(value, dict):
                                continue  # poison too: JSON, but not a message (an array, a number)
                            value["_key"] = record.key.decode() if record.key else None
                            value["_partition"] = record.partition
                            value["_offset"] = record.offset
                            if predicate is None or predicate(value):
                                matches.append(value)
                if until is None or until(matches) or time.monotonic() > deadline:
                    return matches
                await asyncio.sleep(0.1)
        finally:
            await consumer.stop()

    return asyncio.run(run())


async def _behind(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], end: dict) -> bool:
    for tp in partitions:
        if await consumer.position(tp) < end[tp]:
            return True
    return False


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} does not exist")


def produce(topic: str, messages: list[tuple[str | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], acks="all")
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value, key=key.encode() if key else None)
        finally:
            await producer.stop()

    asyncio.run(run())


@dataclass
class Platform:
    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_offsets: dict[str, int] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['INGESTION_PORT']}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.env['WEB_PORT']}"

    @property
    def recorder_url(self) -> str:
        return f"http://127.0.0.1:{self.env['RECORDER_PORT']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['METRICS_PORT']}/metrics"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str) -> None:
        """Start ``name`` under the supervisor (as make up does): a crash or a kill is restarted.

        ``name`` is a service, or one worker of it (``triage-2``: services/workers.py)."""
        path = self.log_path(name)
        self.log_offsets[name] = path.stat().st_size if path.exists() else 0
        handle = open(path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.child_pidfile(name).unlink(missing_ok=True)
        service, worker = parse_name(name)
        worker_args = ["--worker", str(worker)] if worker else []
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.supervisor", service, *worker_args,
             "--child-pidfile", str(self.child_pidfile(name))],
            cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
        remember_pid(self.logs, self.procs[name].pid)

    def child_pidfile(self, name: str) -> Path:
        return self.logs.parent / "run" / f"{name}.child.pid"

    def child_pid(self, name: str) -> int | None:
        """The PID of the service process itself (the supervisor's child), if it is running."""
        try:
            pid = int(self.child_pidfile(name).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def port(self, variable: str, name: str) -> int:
        """The port ``variable`` (INGESTION_PORT ...) of ``name``: worker k's is shifted (services/workers.py)."""
        return int(self.env[variable]) + port_shift(parse_name(name)[1], self.env)

    def readyz_url(self, name: str) -> str:
        service, _ = parse_name(name)
        if service == "ingestion":
            return f"http://127.0.0.1:{self.port('INGESTION_PORT', name)}/readyz"
        if service == "web":
            return f"{self.web_url}/readyz"
        if service == "recorder":
            return f"http://127.0.0.1:{self.port('RECORDER_PORT', name)}/readyz"
        if service == "metrics":
            return f"http://127.0.0.1:{self.port('METRICS_PORT', name)}/readyz"
        index = ("triage", "escalation", "notification").index(service)
        return f"http://127.0.0.1:{self.port('FAUST_WEB_PORT_BASE', name) + index}/readyz"

    def readiness(self, name: str) -> tuple[bool, str]:
        """Whether ``name`` passes its end-to-end readiness probe, and why not."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name}'s supervisor exited with {proc.returncode}:\n{self.tail(name)}")
        try:
            response = httpx.get(self.readyz_url(name), timeout=8)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__} from {self.readyz_url(name)}"
        return response.status_code == 200, response.text[:300]

    def ready(self, name: str) -> bool:
        return self.readiness(name)[0]

    def snapshot(self, name: str) -> str:
        """What ``name`` is doing right now, for a failure message: its readiness answer and
        every thread's stack (py-spy dump; the process is paused for a moment, not stopped)."""
        try:
            why = self.readiness(name)[1]
        except AssertionError as exc:
            why = str(exc)
        pid = self.child_pid(name)
        if pid is None:
            return f"{name}: not running; readiness {why}"
        spy = Path(sys.executable).with_name("py-spy")
        try:
            dump = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True,
                                  timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            dump = f"(no py-spy dump: {exc})"
        return f"{name} (pid {pid}): readiness {why}\n{dump}"

    def wait_ready(self, *names: str, timeout: float = 120.0) -> None:
        for name in names or tuple(self.procs):
            last = {"why": "never asked"}

            def probe(n=name):
                ok, last["why"] = self.readiness(n)
                return ok

            try:
                wait_until(probe, timeout=timeout, interval=0.2, what=f"{name} to be ready")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; its last readiness answer: {last['why']}\n{self.tail(name)}") from None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop ``name`` and its supervisor (SIGTERM: a clean stop)."""
        proc = self.procs.get(name)
        if proc is not None:
            end_process(proc, sig, timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Kill the service process itself with ``sig``, as a crash would; the supervisor
        starts a new one. Returns the new PID (readiness is the caller's to wait for)."""
        old = self.child_pid(name)
        assert old is not None, f"{name} is not running"
        os.kill(old, sig)
        return wait_until(lambda: (pid := self.child_pid(name)) not in (None, old) and pid, timeout=timeout,
                          what=f"the supervisor to restart {name}")

    def restart(self, name: str, sig: int = signal.SIGTERM) -> None:
        if sig == signal.SIGKILL:
            self.kill(name)
        else:
            self.stop(name, sig)
            self.start(name)
        self.wait_ready(name)

    def stop_all(self) -> None:
        # The services in reverse start order (with WORKERS>1, each worker of them).
        for name in [*reversed(SERVICES), *(n for n in reversed(list(self.procs)) if n not in SERVICES)]:
            self.stop(name)

    def tail(self, name: str, lines: int = 40) -> str:
        text = self.log_path(name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def test_environment(state: Path | None = None) -> dict[str, str]:
    """The services' environment; ``state`` (default TEST_STATE, .local/test) holds their data and organisation file."""
    missing = [name for name in ("KAFKA_BOOTSTRAP", "DATABASE_URL") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} not set: integration tests run through `make test`, "
            "which starts their own broker and database"
        )
    state = state or TEST_STATE
    offset = int(os.environ.get("TEST_PORT_OFFSET", "0"))
    webhook_port = 18580 + offset
    # The organisation names the tests' loopback webhook receiver, whose port follows the offset.
    config = state / "organisation.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(TEST_CONFIG.read_text().replace("@WEBHOOK_PORT@", str(webhook_port)))
    env = {
        **os.environ,
        "INGESTION_PORT": str(18080 + offset),
        "METRICS_PORT": str(19108 + offset),
        "RECORDER_PORT": str(18091 + offset),
        "WEB_PORT": str(18095 + offset),
        # Set explicitly: a developer's shell may point these at the make-up stack.
        "INCIDENT_API_URL": f"http://127.0.0.1:{18080 + offset}",
        "METRICS_URL": f"http://127.0.0.1:{19108 + offset}/metrics",
        "FAUST_WEB_PORT_BASE": str(16066 + offset),
        "DATA_DIR": str(state / "data"),
        "APP_PREFIX": "incident-test",
        "INCIDENT_CONFIG": str(config),
        "WEBHOOK_PORT": str(webhook_port),
        "TICK_SECONDS": "0.2",
        # Shorter than the default 30 s, so that the stall test waits less; ample for a commit.
        "LIVENESS_SECONDS": "15",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def incident_for(admin: httpx.Client, alertname: str, timeout: float = 30.0) -> dict:
    """The incident whose labels carry this alert name (waits until the recorder has it)."""

    def find():
        response = admin.get("/v1/incidents", params={"limit": 1000})
        response.raise_for_status()
        for summary in response.json()["incidents"]:
            full = admin.get(f"/v1/incidents/{summary['incident_id']}").json()
            if full.get("labels", {}).get("alertname") == alertname:
                return full
        return None

    return wait_until(find, timeout=timeout, what=f"an incident for {alertname}")
