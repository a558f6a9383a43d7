"""What each process costs, read from /proc: CPU seconds (a process and its children, so
PostgreSQL's backends count), peak resident memory, and the machine's load and CPU."""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return text[text.rindex(")") + 2:].split()


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants, with the children it has already reaped;
    of the process alone when ``pid`` is negative."""
    alone, pid = pid < 0, abs(pid)
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # Fields (1-based, after the name): 14 utime, 15 stime, 16 cutime, 17 cstime; index = n - 3.
    if alone:
        return sum(int(fields[i]) for i in (11, 12)) / TICKS
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    return total + sum(cpu_seconds(child) for child in _children(pid))


def rss_mb(pid: int, peak: bool = False) -> float:
    """VmRSS (now) or VmHWM (the peak since the process started), of ``pid`` alone."""
    name, pid = "VmHWM:" if peak else "VmRSS:", abs(pid)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


@dataclass
class Snapshot:
    cpu: dict[str, float]
    busy: float


def snapshot(pids: dict[str, int | None]) -> Snapshot:
    return Snapshot({name: cpu_seconds(pid) for name, pid in pids.items() if pid}, machine_busy_seconds())


def cost(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per process between two snapshots, plus what the rest of the machine used."""
    spent = {name: round(after.cpu[name] - before.cpu.get(name, 0.0), 2) for name in after.cpu}
    spent["other processes"] = round(max(0.0, after.busy - before.busy - sum(spent.values())), 2)
    return spent


@dataclass
class Sampler:
    """Every ``interval`` seconds: the load average and each service's resident memory."""

    pids: Callable[[], dict[str, int | None]]  # asked each time: a restarted service has a new PID
    interval: float = 2.0
    loads: list[float] = field(default_factory=list)
    rss_peak: dict[str, float] = field(default_factory=dict)

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def sample(self) -> None:
        self.loads.append(loadavg())
        for name, pid in self.pids().items():
            if pid:
                self.rss_peak[name] = max(self.rss_peak.get(name, 0.0), rss_mb(pid), rss_mb(pid, peak=True))

    def load_summary(self) -> dict:
        loads = self.loads or [loadavg()]
        return {"load1_min": min(loads), "load1_max": max(loads), "load1_mean": round(sum(loads) / len(loads), 2),
                "samples": len(loads)}
