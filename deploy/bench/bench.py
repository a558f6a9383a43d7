"""The benchmark behind `make bench`, side by side with Prometheus Alertmanager 0.25 in one run.

On a broker and database of its own (started by deploy/scripts/bench.sh) it runs the
platform's services and an Alertmanager with a null receiver, then:
1. intake: the same alerts from the same aiohttp client at both, 1 per request from 16
   clients and 100 per request from 8, alternating us and Alertmanager for --rounds rounds,
   our pipeline drained after each of our phases;
2. pipeline: --pipeline-alerts alerts on 500 correlation keys until recorded on their incidents;
3. storm: --storm-rate alerts/s offered for --storm-seconds, a probe a second opening a new
   incident: its page and notification latency;
4. commands and /metrics scrapes; then lost and double-counted alerts, CPU, memory and load.
Prints a table and writes .local/bench/results.json (see README, "Performance").
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import api_phases  # noqa: E402
import phases  # noqa: E402
import procstat  # noqa: E402
from alertmanager_process import AlertmanagerProcess  # noqa: E402
from harness import SERVICES, Platform, test_environment  # noqa: E402
from ledger import Ledger  # noqa: E402
from load import SERVICES as BENCH_SERVICES  # noqa: E402
from report import headline, table  # noqa: E402

from shared.auth import Role  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.db.tokens import create_token  # noqa: E402

STATE = REPO / ".local" / "bench"
TEAM, PROBE_SERVICE = "bench", "bench-probe"


def organisation(env: dict[str, str]) -> Path:
    """The test organisation plus the bench's 50 services, its probe service and its team,
    and a `bench` integration with no rate limit (the code default)."""
    org = yaml.safe_load(Path(env["INCIDENT_CONFIG"]).read_text())
    org["teams"][TEAM] = {"rotation": "payments-oncall", "escalation_policy": "slow"}
    for service in [*BENCH_SERVICES, PROBE_SERVICE]:
        org["services"][service] = {"team": TEAM, "tier": 2}
    org["integrations"]["bench"] = {}
    path = STATE / "organisation.yaml"
    path.write_text(yaml.safe_dump(org, sort_keys=False))
    return path


async def credentials() -> dict[str, str]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await migrate(conn)
        _, key = await create_token(conn, Role.INTEGRATION, "bench")
        _, admin = await create_token(conn, Role.PLATFORM_ADMIN, "bench-admin")
        return {"key": key, "admin": admin}
    finally:
        await conn.close()


def pidfile(name: str) -> int | None:
    try:
        return int((STATE / "run" / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def run(args, platform: Platform, am: AlertmanagerProcess, names: list[str]) -> dict:
    creds = await credentials()

    def pids() -> dict[str, int | None]:
        found = {name: platform.child_pid(name) for name in names}
        # The bench client's own process only: its children are the services' supervisors.
        return {**found, "kafka": pidfile("kafka"), "postgres": pidfile("postgres"), "alertmanager": am.pid,
                "bench client": -os.getpid()}

    bench = phases.Bench(platform.api_url, creds["key"], am, Ledger(os.environ["DATABASE_URL"]), pids,
                         args.drain_timeout, [], STATE / "profiles" if args.profile else None,
                         lambda: {name: platform.child_pid(name) for name in names})
    sampler = procstat.Sampler(pids)
    sampling = asyncio.create_task(sampler.run())
    results: dict = {"load1_at_start": procstat.loadavg()}
    start = procstat.snapshot(pids())
    try:
        # Warm-up: connections, caches, consumer assignments, Alertmanager's first groups.
        for target in ("intake", "alertmanager"):
            await phases.intake_phase(bench, target, "batch100", 60, warm_up=True)
        wanted = args.only or ["intake", "pipeline", "fleet", "storm", "commands", "scrapes"]
        if "intake" in wanted:
            print("intake, side by side:", flush=True)
            results["intake"] = await phases.intake_rounds(bench, args.rounds, args.phase_seconds)
        if "pipeline" in wanted:
            print("pipeline ...", flush=True)
            results["pipeline"] = await phases.pipeline(bench, args.pipeline_alerts)
        if "fleet" in wanted:
            print("fleet outage ...", flush=True)
            results["fleet"] = await phases.fleet(bench, args.fleet_alerts, BENCH_SERVICES[0])
        if "storm" in wanted:
            print("storm ...", flush=True)
            results["storm"] = await phases.storm(bench, os.environ["KAFKA_BOOTSTRAP"], args.storm_rate,
                                                  args.storm_seconds, PROBE_SERVICE, TEAM)
        if "commands" in wanted:
            results["commands"] = await api_phases.commands(platform.api_url, creds["admin"], args.commands)
        if "scrapes" in wanted:
            results["scrapes"] = await api_phases.scrapes(platform.metrics_url, 50)
        await bench.drain("the run")
        results["accounting"] = await bench.ledger.balance()
    finally:
        sampling.cancel()
    sampler.sample()
    results["cpu_seconds_whole_run"] = procstat.cost(start, procstat.snapshot(pids()))
    results["rss_peak_mb"] = {name: round(mb, 1) for name, mb in sampler.rss_peak.items()}
    results["load"] = {"load1_at_start": results.pop("load1_at_start"), **sampler.load_summary(),
                       "load1_at_end": procstat.loadavg()}
    results["drains"] = bench.drains
    return results


def _stop_on_sigterm(signum, frame) -> None:
    # A SIGTERM (bench.sh's trap, a stopped make) runs the finally blocks that stop the
    # services and Alertmanager this process started, instead of leaving them behind.
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="intake rounds, us and Alertmanager alternating")
    parser.add_argument("--phase-seconds", type=float, default=5.0, help="length of one intake phase")
    parser.add_argument("--pipeline-alerts", type=int, default=20_000)
    parser.add_argument("--fleet-alerts", type=int, default=20_000,
                        help="distinct hosts failing into one incident (one correlation key)")
    parser.add_argument("--storm-rate", type=float, default=2000.0, help="alerts/s offered during the storm")
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument("--drain-timeout", type=float, default=900.0,
                        help="longest wait for the pipeline to record what was accepted")
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--only", nargs="*", choices=["intake", "pipeline", "fleet", "storm", "commands", "scrapes"])
    parser.add_argument("--profile", action="store_true",
                        help="py-spy each service during the pipeline phase (.local/bench/profiles/)")
    parser.add_argument("--out", type=Path, default=STATE / "results.json")
    args = parser.parse_args()
    env = test_environment()
    env["DATA_DIR"] = str(STATE / "data")
    (STATE / "run").mkdir(parents=True, exist_ok=True)
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    env["INCIDENT_CONFIG"] = str(organisation(env))
    os.environ["INCIDENT_CONFIG"] = env["INCIDENT_CONFIG"]
    offset = int(env.get("TEST_PORT_OFFSET", "40"))
    # Receivers without integrations: it spends its time on intake alone.
    null = {"route": {"receiver": "null", "group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m",
                      "repeat_interval": "12h"}, "receivers": [{"name": "null"}]}
    (STATE / "alertmanager").mkdir(parents=True, exist_ok=True)
    am = AlertmanagerProcess(STATE / "alertmanager", 19793 + offset, null)
    platform = Platform(env=env, logs=STATE / "logs")
    # Every topic, Faust's own included, exists before any service starts (as in make up).
    subprocess.run([sys.executable, "-m", "services.topology"], cwd=REPO, env=env, check=True, timeout=120)
    names = [name for name in SERVICES if name != "web"]
    try:
        am.start()
        for name in names:
            platform.start(name)
        platform.wait_ready()
        results = asyncio.run(run(args, platform, am, names))
    finally:
        platform.stop_all()
        am.stop()
    results["machine"] = {"cpus": os.cpu_count(), "python": host.python_version(), "platform": host.platform(),
                          "topic_partitions": int(env.get("TOPIC_PARTITIONS", "4")), "alertmanager": am.version()}
    results["arguments"] = {k: v for k, v in vars(args).items() if k != "out"}
    results["finished_at"] = datetime.now(timezone.utc).isoformat()
    results = {**headline(results), **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
