"""The chaos soak, short (make soak runs it for 10 minutes on a stack of its own): two minutes
of steady load with commands mixed in, on the test platform, while random services are
SIGKILLed and the broker is restarted once; then every invariant of deploy/soak/invariants.py.

The faults come closer together than make soak's 30-60 s (20-35 s), so that two minutes
hold a broker restart and several kills. The platform is left running and ready for the
tests that follow. Each figure is printed on a line starting with "SOAK " (pytest -s).
"""
from __future__ import annotations

import sys

from harness import REPO

sys.path.insert(0, str(REPO / "deploy" / "soak"))

import invariants  # noqa: E402
import soak  # noqa: E402
from chaos import Broker  # noqa: E402


def test_fault_soak_two_minutes_of_kills_and_a_broker_restart_keep_every_invariant(platform, tokens):
    broker = Broker(REPO / ".local" / "test" / "run")
    settings = soak.Settings(minutes=2, gaps=(20.0, 35.0), drain_timeout=240.0)
    report = soak.run(platform, broker, tokens["integration"], tokens["platform-admin"], settings)
    # Healthy for the tests that follow; and only the current processes may still run.
    platform.wait_ready(timeout=180)
    running = {name: platform.child_pid(name) for name in platform.procs} | {"broker": broker.pid()}
    seen = {f"{name} processes": pids for name, pids in report.chaos.seen_pids.items()}
    report.checks.append(invariants.processes({**seen, "broker": report.chaos.broker_pids}, running))
    lines = "\n".join(report.lines())
    print(lines)
    kinds = [fault.what for fault in report.chaos.faults]
    assert "broker restart" in kinds and sum(k.startswith("kill ") for k in kinds) >= 2, f"faults {kinds}\n{lines}"
    assert report.load.ledger.accepted_total > 1000, f"too little load to prove anything\n{lines}"
    assert report.ok, f"invariants violated:\n" + "\n".join(report.violations[:20]) + f"\n{lines}"
