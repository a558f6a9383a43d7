"""The soak's faults: a random service SIGKILLed every so often, and the broker restarted once.

Every fault is followed by a wait for readiness (the end-to-end probe through Kafka),
timed: that is the recovery time reported. Meanwhile the PIDs of every service process
are watched, so that restarts nobody asked for (a watchdog's exit 75, a crash) are
counted and every process that ever ran is known to the final check (and the machine's load sampled).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import REPO, Platform, wait_until

KILLABLE = ("ingestion", "triage", "escalation", "notification", "metrics", "recorder")
# Seconds a service may take to answer ready again; beyond it the fault is a violation (the soak goes on).
RECOVERY_BOUND = {"kill": 180.0, "broker": 240.0, "end": 300.0}


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Broker:
    """The stack's broker, by the PID file stack.sh keeps in ``run_dir``; started again with
    stack.sh (the caller's environment names the profile's ports and state directory)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def pid(self, name: str = "kafka") -> int:
        return int((self.run_dir / f"{name}.pid").read_text().split()[0])

    def restart(self, timeout: float = 180.0) -> tuple[int, int, float]:
        """SIGTERM (a clean shutdown), wait until it exited, start it again.
        Returns the old PID, the new one, and the seconds it was down."""
        old = self.pid()
        os.kill(old, signal.SIGTERM)
        stopped = time.monotonic()
        wait_until(lambda: not pid_alive(old), timeout=90, interval=0.2, what=f"the broker (pid {old}) to exit")
        subprocess.run(["bash", str(REPO / "deploy" / "scripts" / "stack.sh"), "start", "--profile", "test"],
                       cwd=REPO, check=True, timeout=timeout, capture_output=True)
        return old, self.pid(), time.monotonic() - stopped


@dataclass
class Fault:
    at_s: float  # seconds into the soak
    what: str  # "kill <service>" or "broker restart"
    old_pid: int
    new_pid: int
    recovery_s: float | None  # from the fault until every affected service answered ready (None: not in time)
    down_s: float = 0.0  # the broker: from SIGTERM until it was serving again
    why: str = ""  # the last readiness answer, when it did not recover in time

    def line(self) -> str:
        down = f", broker down {self.down_s:.1f} s" if self.down_s else ""
        ready = (f"ready again after {self.recovery_s:.1f} s" if self.recovery_s is not None
                 else f"NOT ready again in time ({self.why})")
        return f"t={self.at_s:6.1f}s {self.what:<22} pid {self.old_pid} -> {self.new_pid}, {ready}{down}"


@dataclass
class Chaos:
    platform: Platform
    broker: Broker
    seconds: float
    gaps: tuple[float, float] = (30.0, 60.0)
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    seen_pids: dict[str, set[int]] = field(default_factory=dict)  # service -> every child PID observed
    broker_pids: set[int] = field(default_factory=set)
    killed: list[int] = field(default_factory=list)
    final_ready_s: float | None = None
    final_why: str = ""
    load1: list[float] = field(default_factory=list)  # the machine's 1-minute load, sampled as PIDs are

    def plan(self) -> list[tuple[float, str]]:
        """(second, target) for each fault: gaps drawn from ``gaps``; the one nearest the
        middle of the run restarts the broker, the others kill a random service."""
        rng = random.Random(self.seed)
        times, t = [], rng.uniform(*self.gaps)
        while t < self.seconds - 5:
            times.append(t)
            t += rng.uniform(*self.gaps)
        if not times:
            return []
        middle = min(range(len(times)), key=lambda i: abs(times[i] - self.seconds / 2))
        # Drawn from shuffled rounds of every service: random, yet each one is killed before any twice.
        victims: list[str] = []
        while len(victims) < len(times):
            victims += rng.sample(KILLABLE, len(KILLABLE))
        kills = iter(victims)
        return [(at, "broker" if i == middle else next(kills)) for i, at in enumerate(times)]

    def watch(self) -> None:
        self.load1.append(os.getloadavg()[0])
        for name in self.platform.procs:
            pid = self.platform.child_pid(name)
            if pid is not None:
                self.seen_pids.setdefault(name, set()).add(pid)
        try:
            self.broker_pids.add(self.broker.pid())
        except (OSError, ValueError):
            pass

    def pause(self, until: float) -> None:
        """Until ``until`` (time.monotonic()), noting service PIDs every half second."""
        while (left := until - time.monotonic()) > 0:
            self.watch()
            time.sleep(min(0.5, left))  # a schedule, not a wait for a condition

    def recover(self, names: tuple[str, ...], bound: float) -> tuple[float | None, str]:
        """Seconds until every one of ``names`` answers ready (None: not within ``bound``, with
        why not), noting PIDs meanwhile: a service that keeps restarting is seen doing so."""
        begun, why = time.monotonic(), ""
        waiting = list(names)
        while waiting:
            if time.monotonic() - begun > bound:
                return None, why
            self.watch()
            ok, answer = self.platform.readiness(waiting[0])
            if ok:
                waiting.pop(0)
            else:
                why = f"{waiting[0]}: {answer[:120]}"
                time.sleep(0.5)  # the interval of a wait for readiness, as wait_ready's
        return time.monotonic() - begun, ""

    def run(self, started: float) -> None:
        self.watch()
        everything = tuple(self.platform.procs)
        for at, target in self.plan():
            self.pause(started + at)
            begun = time.monotonic()
            if target == "broker":
                old, new, down = self.broker.restart()
                self.broker_pids |= {old, new}
                recovered, why = self.recover(everything, RECOVERY_BOUND["broker"])
                fault = Fault(begun - started, "broker restart", old, new, recovered, down, why)
            else:
                old = wait_until(lambda: self.platform.child_pid(target), timeout=60, what=f"{target} running")
                new = self.platform.kill(target, signal.SIGKILL)
                self.killed.append(old)
                recovered, why = self.recover((target,), RECOVERY_BOUND["kill"])
                fault = Fault(begun - started, f"kill {target}", old, new, recovered, why=why)
            if recovered is not None:
                fault.recovery_s = time.monotonic() - begun  # from the fault itself, the restart included
            self.faults.append(fault)
            print(f"soak: {fault.line()}", flush=True)
            self.watch()
        self.pause(started + self.seconds)
        # Whatever the last fault left, everything is ready again before the drain.
        self.final_ready_s, self.final_why = self.recover(everything, RECOVERY_BOUND["end"])

    def unplanned_restarts(self) -> dict[str, int]:
        """Per service, child processes beyond the first and the ones our kills replaced."""
        kills = {name: sum(f.what == f"kill {name}" for f in self.faults) for name in self.seen_pids}
        return {name: len(pids) - 1 - kills[name] for name, pids in self.seen_pids.items()
                if len(pids) - 1 - kills[name] > 0}
