"""The bench's phases. Each of ours ends by draining the pipeline, so the next phase
(ours or Alertmanager's) never runs beside the previous one's backlog."""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import load
import procstat
import profiles
from alertmanager_process import AlertmanagerProcess
from ledger import Ledger
from pages import Watcher, send_probes

MODES = {"single": (1, 16), "batch100": (100, 8)}  # alerts per request, concurrent clients


@dataclass
class Bench:
    api: str
    key: str
    am: AlertmanagerProcess
    ledger: Ledger
    pids: callable
    drain_timeout: float
    drains: list
    profile_dir: object = None  # a Path: py-spy records the services during the pipeline phase
    service_pids: callable = None

    @property
    def intake_url(self) -> str:
        return f"{self.api}/v1/alerts"

    def client(self, concurrency: int, ours: bool):
        return load.session(concurrency, {"Authorization": f"Bearer {self.key}"} if ours else None)

    async def drain(self, after: str) -> None:
        outcome = await self.ledger.drain(self.drain_timeout)
        self.drains.append({"after": after, **outcome})


async def intake_phase(bench: Bench, target: str, mode: str, seconds: float, warm_up: bool = False) -> dict:
    batch, concurrency = MODES[mode]
    ours = target == "intake"
    bodies = load.bodies(target, batch, 20 if warm_up else 2000 if batch == 1 else 200)
    url = bench.intake_url if ours else f"{bench.am.url}/api/v2/alerts"
    before = procstat.snapshot(bench.pids())
    load1 = procstat.loadavg()
    async with bench.client(concurrency, ours) as client:
        outcome = await load.closed_loop(client, url, bodies, concurrency, seconds, once=warm_up)
    spent = procstat.cost(before, procstat.snapshot(bench.pids()))
    result = {"target": target, "mode": mode, "load1_before": load1, "load1_after": procstat.loadavg(),
              **outcome.summary(), "cpu_seconds": spent}
    process = "ingestion" if ours else "alertmanager"
    if outcome.alerts:
        result["cpu_s_per_1000_alerts"] = round(spent.get(process, 0.0) / outcome.alerts * 1000, 3)
    if ours:
        bench.ledger.add(outcome.accepted)
        await bench.drain(f"intake {mode}")
    return result


async def intake_rounds(bench: Bench, rounds: int, seconds: float) -> dict:
    """Alternating us and Alertmanager, mode by mode, who goes first swapping each round."""
    phases = []
    for r in range(rounds):
        for mode in MODES:
            order = ("intake", "alertmanager") if r % 2 == 0 else ("alertmanager", "intake")
            for target in order:
                phases.append({"round": r + 1, **await intake_phase(bench, target, mode, seconds)})
                print(f"  round {r + 1} {mode:8} {target:12} {phases[-1]['alerts_per_s']:>10} alerts/s"
                      f"  (load {phases[-1]['load1_before']})", flush=True)
    summary = {}
    for mode in MODES:
        for target in ("intake", "alertmanager"):
            rates = [p["alerts_per_s"] for p in phases if p["mode"] == mode and p["target"] == target]
            summary[f"{target}_{mode}_alerts_per_s"] = round(statistics.median(rates), 1)
        ratios = [ours["alerts_per_s"] / theirs["alerts_per_s"]
                  for ours in phases if ours["mode"] == mode and ours["target"] == "intake"
                  for theirs in phases if theirs["mode"] == mode and theirs["target"] == "alertmanager"
                  and theirs["round"] == ours["round"] and theirs["alerts_per_s"]]
        summary[f"intake_{mode}_ratio"] = round(statistics.median(ratios), 3) if ratios else None
    return {"phases": phases, **summary}


async def pipeline(bench: Bench, alerts: int) -> dict:
    """``alerts`` alerts on the 500 keys, batches of 100 from 8 clients, until every one is recorded."""
    bodies = load.bodies("intake", 100, alerts // 100, prefix="PipelineAlert")
    events_before = await bench.ledger.audit_events()
    before = procstat.snapshot(bench.pids())
    started = time.perf_counter()
    with profiles.recording(bench.service_pids() if bench.profile_dir else {}, bench.profile_dir,
                            bench.profile_dir is not None) as hot:
        async with bench.client(8, True) as client:
            outcome = await load.closed_loop(client, bench.intake_url, bodies, 8, once=True)
        bench.ledger.add(outcome.accepted)
        waited = await bench.ledger.wait_recorded(outcome.accepted, bench.drain_timeout)
    elapsed = time.perf_counter() - started
    spent = procstat.cost(before, procstat.snapshot(bench.pids()))
    events = await bench.ledger.audit_events() - events_before
    result = {"alerts": outcome.alerts, "correlation_keys": len(outcome.accepted),
              "audit_events": events, "audit_events_per_alert": round(events / outcome.alerts, 3) if outcome.alerts else None,
              "accepted_seconds": round(outcome.seconds, 2), "recorded": waited is not None,
              "recorded_seconds": round(elapsed, 2) if waited is not None else None,
              "alerts_per_s": round(outcome.alerts / elapsed, 1) if waited is not None else None,
              "cpu_seconds": spent,
              "cpu_s_per_1000_alerts": {name: round(s / outcome.alerts * 1000, 3) for name, s in spent.items()}}
    if hot:
        result["profile"] = hot
    await bench.drain("pipeline")
    return result


async def storm(bench: Bench, bootstrap: str, rate: float, seconds: float, probe_service: str, team: str) -> dict:
    """``rate`` alerts/s offered (batches of 100) for ``seconds`` on the 500 keys, and a probe a
    second opening a new incident; the probes' page latency, and how long the storm took to drain."""
    watcher = Watcher(bootstrap, team)
    await watcher.start()
    probes: dict = {}
    bodies = load.bodies("intake", 100, 500, prefix="StormAlert")
    started = time.perf_counter()
    load1 = procstat.loadavg()
    try:
        async with bench.client(64, True) as client:
            outcome, _ = await asyncio.gather(
                load.offered(client, bench.intake_url, bodies, rate / 100, seconds),
                send_probes(client, bench.intake_url, watcher, probe_service, seconds, probes),
            )
        bench.ledger.add(outcome.accepted)
        bench.ledger.add(probes)
        storm_end = time.perf_counter() - started
        drained = await bench.ledger.wait_recorded(outcome.accepted, bench.drain_timeout)
        await watcher.wait(timeout=60)
    finally:
        await watcher.stop()
    opened, notified, never = watcher.latencies_ms()
    await bench.drain("storm")
    return {"offered_alerts_per_s": rate, "seconds": seconds, "load1_before": load1, **outcome.summary(),
            "probes": len(watcher.sent), "probes_never_opened": never,
            "probes_never_notified": len(watcher.sent) - len(notified),
            "page_p50_ms": round(load.pct(opened, 0.5), 1), "page_p99_ms": round(load.pct(opened, 0.99), 1),
            "notify_p50_ms": round(load.pct(notified, 0.5), 1), "notify_p99_ms": round(load.pct(notified, 0.99), 1),
            "sending_seconds": round(storm_end, 2),
            "drained_seconds_after_start": round(storm_end + drained, 2) if drained is not None else None}


async def fleet(bench: Bench, alerts: int, service: str) -> dict:
    """A fleet outage: ``alerts`` distinct hosts failing into one incident (one correlation key),
    batches of 100 from 8 clients. The rate at which the incident's ``alert_count`` grows over
    its first and its last 5,000 alerts (the cost of one more alert must not grow with the
    incident)."""
    name = "FleetOutage"
    bodies = load.fleet_bodies(alerts, 100, service, name)
    quarter = min(5000, alerts // 4)
    marks: dict[int, float] = {}

    async def watch() -> None:
        conn = await bench.ledger.connect()
        try:
            while len(marks) < 4:
                count = await conn.fetchval(
                    "SELECT coalesce(sum(alert_count), 0) FROM incidents WHERE service = $1 "
                    "AND record->'labels'->>'alertname' = $2", service, name)
                now = time.perf_counter()
                for mark in (quarter, alerts - quarter, alerts):
                    if count >= mark:
                        marks.setdefault(mark, now)
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    before = procstat.snapshot(bench.pids())
    started = time.perf_counter()
    marks[0] = started
    watcher = asyncio.create_task(watch())
    async with bench.client(8, True) as client:
        outcome = await load.closed_loop(client, bench.intake_url, bodies, 8, once=True)
    bench.ledger.add(outcome.accepted)
    try:
        await asyncio.wait_for(watcher, bench.drain_timeout)
    except asyncio.TimeoutError:
        pass
    spent = procstat.cost(before, procstat.snapshot(bench.pids()))
    first = quarter / (marks[quarter] - marks[0]) if quarter in marks and marks[quarter] > marks[0] else None
    last = (quarter / (marks[alerts] - marks[alerts - quarter])
            if alerts in marks and alerts - quarter in marks and marks[alerts] > marks[alerts - quarter] else None)
    await bench.drain("fleet")
    return {"alerts": outcome.alerts, "accepted_seconds": round(outcome.seconds, 2),
            "recorded_seconds": round(marks[alerts] - started, 2) if alerts in marks else None,
            "first_alerts_per_s": round(first, 1) if first else None,
            "last_alerts_per_s": round(last, 1) if last else None,
            "last_over_first": round(last / first, 3) if first and last else None,
            "quarter": quarter, "cpu_seconds": spent}
