"""The chaos soak behind `make soak MINUTES=N`: steady load, random SIGKILLs, one broker restart,
then the invariants, printed.

    deploy/scripts/soak.sh [--minutes 10] [--rate 30] [--seed N] ...

On a broker and database of its own (the test profile shifted by SOAK_PORT_OFFSET, state
in .local/soak; started by soak.sh) it runs the services under their supervisors, sends
``--rate`` alerts/s over ``--keys`` correlation keys with commands mixed in, SIGKILLs a
random service every 30-60 s and restarts the broker once, waits for the pipeline to
drain, and checks what invariants.py lists. Every line of the verdict starts with
"SOAK "; the exit code is 0 only when every invariant held.
``run`` is what tests/integration/test_fault_soak.py calls on the test session's platform.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (HERE, REPO / "tests" / "integration", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import invariants  # noqa: E402
from chaos import Broker, Chaos  # noqa: E402
from harness import SERVICES, Platform, sql, test_environment  # noqa: E402
from load import Load  # noqa: E402

from shared.auth import Role  # noqa: E402
from shared.config_loader import load_organisation  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.db.tokens import create_token  # noqa: E402

STATE = REPO / ".local" / "soak"
TEAMS = ("payments", "integrations", "compliance")  # billing-worker, checkout-api, connector:CRM (regulated)


@dataclass
class Settings:
    minutes: float = 10.0
    rate: float = 30.0  # alerts/s
    keys: int = 300  # correlation keys
    hosts: int = 10  # fingerprints per key
    command_rate: float = 2.0  # commands/s
    gaps: tuple[float, float] = (30.0, 60.0)  # seconds between faults
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))
    drain_timeout: float = 300.0


@dataclass
class Report:
    run: str
    settings: Settings
    chaos: Chaos
    load: Load
    checks: list[invariants.Check]
    load1: list[float]
    loadavg: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # (1, 5, 15 min) at the start and the end

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def violations(self) -> list[str]:
        return [f"{c.name}: {v}" for c in self.checks for v in c.violations]

    def figures(self) -> dict[str, dict]:
        return {c.name: c.figures for c in self.checks}

    def lines(self) -> list[str]:
        s, ledger = self.settings, self.load.ledger
        recoveries = [f.recovery_s for f in self.chaos.faults if f.recovery_s is not None]
        out = [f"SOAK run {self.run}: {s.minutes:g} min, {s.rate:g} alerts/s offered over {s.keys} keys x {s.hosts} "
               f"hosts, {s.command_rate:g} commands/s, a fault every {s.gaps[0]:g}-{s.gaps[1]:g} s, seed {s.seed}"]
        out += [f"SOAK fault {f.line()}" for f in self.chaos.faults]
        out.append(f"SOAK recovery max {max(recoveries, default=0):.1f} s, mean "
                   f"{sum(recoveries) / max(1, len(recoveries)):.1f} s over {len(recoveries)} faults; "
                   f"unplanned restarts {self.chaos.unplanned_restarts() or 'none'}")
        out.append(f"SOAK alert answers {dict(sorted(ledger.statuses.items(), key=str))}")
        commands: dict[str, dict] = {}
        for (kind, answer), n in sorted(ledger.commands.items()):
            commands.setdefault(kind, {})[answer] = n
        out.append(f"SOAK command answers {commands}")
        if ledger.command_5xx:
            out.append(f"SOAK command 5xx (first 3) {ledger.command_5xx[:3]}")
        if self.load1:
            out.append(f"SOAK load1 min {min(self.load1):.2f} mean {sum(self.load1) / len(self.load1):.2f} "
                       f"max {max(self.load1):.2f} ({os.cpu_count()} cpus); load average at start "
                       f"{' '.join(f'{x:.2f}' for x in self.loadavg[0])}, at end {' '.join(f'{x:.2f}' for x in self.loadavg[1])}")
        out += [f"SOAK {check.line()}" for check in self.checks]
        out.append(f"SOAK verdict: {'every invariant held' if self.ok else 'VIOLATED'}")
        return out


class LoadThread:
    """The load's event loop on a thread of its own: the faults and the waits for
    readiness that follow them are synchronous (the harness), the load must not pause."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="soak-load", daemon=True)
        self.started = threading.Event()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop_event = asyncio.Event()
            self.started.set()
            await self.load.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread by stop()
            self.error = exc
        finally:
            self.started.set()
            self.loop.close()

    def start(self) -> None:
        self.thread.start()
        self.started.wait(30)

    def stop(self) -> None:
        if self.stop_event is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(120)
        if self.error is not None:
            raise self.error


def run(platform: Platform, broker: Broker, key: str, admin_token: str, settings: Settings,
        run_id: str | None = None) -> Report:
    """Load, faults, drain, checks (processes excepted: they are the caller's to judge)."""
    run_id = run_id or uuid.uuid4().hex[:8]
    org = load_organisation(Path(platform.env["INCIDENT_CONFIG"]))
    rng = random.Random(settings.seed)

    def incidents():
        return [(r["incident_id"], r["status"]) for r in sql(
            "SELECT incident_id, status FROM incidents WHERE record->'labels'->>'soak' = $1", run_id)]

    load = Load(platform.api_url, key, admin_token, org, run_id, rate=settings.rate, keys=settings.keys,
                hosts=settings.hosts, command_rate=settings.command_rate, seed=rng.randrange(1 << 30),
                incidents=incidents)
    chaos = Chaos(platform, broker, settings.minutes * 60, settings.gaps, rng.randrange(1 << 30))
    print(f"SOAK run {run_id}: starting, {settings.minutes:g} min, seed {settings.seed}; plan "
          + ", ".join(f"{t:.0f}s {what}" for t, what in chaos.plan()), flush=True)
    [since] = sql("SELECT now() AS t")
    loadavg_start = os.getloadavg()
    sender = LoadThread(load)
    sender.start()
    try:
        chaos.run(time.monotonic())
    finally:
        sender.stop()
    print(f"SOAK load stopped: {load.ledger.accepted_total} alerts accepted; draining", flush=True)
    recovery = invariants.Check("recovery", figures={
        "faults": len(chaos.faults), "recovered": sum(f.recovery_s is not None for f in chaos.faults),
        "max_s": round(max((f.recovery_s or 0 for f in chaos.faults), default=0), 1),
        "ready_at_end_s": None if chaos.final_ready_s is None else round(chaos.final_ready_s, 1),
        "unplanned_restarts": sum(chaos.unplanned_restarts().values())})
    recovery.violations = [f"{f.what} at {f.at_s:.0f}s: not ready again in time ({f.why})"
                           for f in chaos.faults if f.recovery_s is None]
    if chaos.final_ready_s is None:
        recovery.violations.append(f"not every service ready after the load ({chaos.final_why})")
    drained = invariants.drain(load.ledger, settings.drain_timeout)
    rows = invariants.soak_incidents(run_id)
    checks = [recovery, drained] + [_checked(name, check) for name, check in (
        ("alerts", lambda: invariants.alerts(load.ledger, rows)),
        ("audit", lambda: invariants.audit(rows)),
        ("table=sql", lambda: invariants.table(platform.env["APP_PREFIX"], rows, invariants.allocated_since(since["t"]))),
        ("metrics=sql", lambda: invariants.metrics(platform)),
        ("notifications", lambda: invariants.notifications(rows, TEAMS)),
    )]
    return Report(run_id, settings, chaos, load, checks, chaos.load1, (loadavg_start, os.getloadavg()))


def _checked(name: str, check) -> invariants.Check:
    """A check that could not run is a violation, and the other checks still run."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - reported in the verdict, with its type
        return invariants.Check(name, violations=[f"could not check: {type(exc).__name__}: {exc}"[:500]])


async def _credentials() -> tuple[str, str]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await migrate(conn)
        _, key = await create_token(conn, Role.INTEGRATION, "soak")
        _, admin = await create_token(conn, Role.PLATFORM_ADMIN, "soak-admin")
        return key, admin
    finally:
        await conn.close()


def _stop_on_sigterm(signum, frame) -> None:
    # soak.sh's trap or an interrupted make: run the finally blocks that stop what was started.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Settings()
    parser.add_argument("--minutes", type=float, default=defaults.minutes)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="alerts/s offered")
    parser.add_argument("--keys", type=int, default=defaults.keys, help="correlation keys")
    parser.add_argument("--hosts", type=int, default=defaults.hosts, help="fingerprints per key")
    parser.add_argument("--command-rate", type=float, default=defaults.command_rate)
    parser.add_argument("--gaps", type=float, nargs=2, default=defaults.gaps, metavar=("MIN", "MAX"),
                        help="seconds between faults")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    settings = Settings(args.minutes, args.rate, args.keys, args.hosts, args.command_rate, tuple(args.gaps), args.seed)
    env = test_environment(STATE)
    # A stack like make up's: the services' own watchdog bound (30 s) and escalation tick, not
    # the test suite's shortened ones (a loaded machine trips a 15 s bound while a worker restores).
    for name in ("LIVENESS_SECONDS", "TICK_SECONDS"):
        env.pop(name, None)
    logs, run_dir = STATE / "logs", STATE / "run"
    for directory in (logs, run_dir, Path(env["DATA_DIR"])):
        directory.mkdir(parents=True, exist_ok=True)
    os.environ["INCIDENT_CONFIG"] = env["INCIDENT_CONFIG"]
    platform = Platform(env=env, logs=logs)
    broker = Broker(run_dir)
    started = {"postgres": {broker.pid("postgres")}, "broker": {broker.pid()}}
    subprocess.run([sys.executable, "-m", "services.topology"], cwd=REPO, env=env, check=True, timeout=120)
    names = [name for name in SERVICES if name != "web"]
    report = None
    try:
        for name in names:
            platform.start(name)
        platform.wait_ready(timeout=180)
        key, admin = asyncio.run(_credentials())
        report = run(platform, broker, key, admin, settings)
    finally:
        started["supervisors"] = {proc.pid for proc in platform.procs.values()}
        platform.stop_all()
        subprocess.run(["bash", str(REPO / "deploy" / "scripts" / "stack.sh"), "stop", "--profile", "test"],
                       cwd=REPO, check=False, timeout=180, capture_output=True)
    if report is None:
        return 1
    for name, pids in report.chaos.seen_pids.items():
        started[f"{name} processes"] = pids
    started["broker"] |= report.chaos.broker_pids
    report.checks.append(invariants.processes(started))
    print()
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
