"""The benchmark behind `make bench`: intake throughput, alert-to-incident latency,
end-to-end processing rate, command round trips and metrics scrapes, on a real broker
and database (started by deploy/scripts/bench.sh). Prints a table, writes JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness import Platform, test_environment  # noqa: E402

from shared.auth import Role  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.db.tokens import create_token  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def tokens() -> dict[str, str]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await migrate(conn)
        _, key = await create_token(conn, Role.INTEGRATION, "bench")
        _, admin = await create_token(conn, Role.PLATFORM_ADMIN, "bench-admin")
        return {"key": key, "admin": admin}
    finally:
        await conn.close()


def alert(name: str, dedup: str | None = None) -> dict:
    body = {"service": "billing-worker", "summary": f"{name} firing", "severity": "warning",
            "labels": {"alertname": name}}
    if dedup:
        body["dedup_key"] = dedup
    return body


async def intake(api: str, key: str, total: int, concurrency: int, batch: int) -> dict:
    name = f"BenchIntake-{uuid.uuid4().hex[:6]}"
    latencies: list[float] = []
    queue = asyncio.Queue()
    for i in range(0, total, batch):
        queue.put_nowait([alert(name, f"{name}-{j % 20}") for j in range(i, min(total, i + batch))])

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post("/v1/alerts", json=body if batch > 1 else body[0])
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            ACCEPTED["alerts"] += len(body)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"alerts": total, "requests": len(latencies), "concurrency": concurrency, "batch": batch,
            "seconds": round(elapsed, 2), "alerts_per_second": round(total / elapsed, 1),
            "p50_ms": round(pct(latencies, 0.5), 2), "p95_ms": round(pct(latencies, 0.95), 2),
            "p99_ms": round(pct(latencies, 0.99), 2)}


ACCEPTED = {"alerts": 0}


async def drain(quiet_for: float = 1.0, timeout: float = 600.0) -> float:
    """Wait until every accepted alert is recorded on an incident and the audit trail is quiet."""
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    started = time.perf_counter()
    try:
        last, still_since = -1, time.perf_counter()
        while time.perf_counter() - started < timeout:
            recorded = await conn.fetchval("SELECT coalesce(sum(alert_count), 0) FROM incidents")
            count = await conn.fetchval("SELECT count(*) FROM audit_events")
            if count != last or recorded < ACCEPTED["alerts"]:
                last, still_since = count, time.perf_counter()
            elif time.perf_counter() - still_since >= quiet_for:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def alert_to_incident(api: str, key: str, admin: str, count: int) -> dict:
    """POST one new alert, then poll PostgreSQL until its incident is recorded."""
    latencies = []
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            for _ in range(count):
                name = f"BenchOpen-{uuid.uuid4().hex[:8]}"
                started = time.perf_counter()
                (await client.post("/v1/alerts", json=alert(name))).raise_for_status()
                ACCEPTED["alerts"] += 1
                while not await conn.fetchval(
                    "SELECT 1 FROM incidents WHERE record->'labels'->>'alertname' = $1", name
                ):
                    await asyncio.sleep(0.005)
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return {"incidents": count, "p50_ms": round(pct(latencies, 0.5), 1), "p95_ms": round(pct(latencies, 0.95), 1),
            "max_ms": round(max(latencies), 1)}


async def pipeline(api: str, key: str, total: int, fingerprints: int) -> dict:
    """Alerts through intake, triage (4 hops) and the recorder: until PostgreSQL counts them all."""
    name = f"BenchStorm-{uuid.uuid4().hex[:6]}"
    names = [f"{name}-{i}" for i in range(fingerprints)]
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                     limits=httpx.Limits(max_connections=16)) as client:
            started = time.perf_counter()
            batches = [[alert(names[j % fingerprints], f"{names[j % fingerprints]}-fp") for j in range(i, i + 50)]
                       for i in range(0, total, 50)]
            for chunk in range(0, len(batches), 16):
                await asyncio.gather(*(client.post("/v1/alerts", json=b) for b in batches[chunk:chunk + 16]))
            ACCEPTED["alerts"] += total
            accepted = time.perf_counter() - started
            while True:
                counted = await conn.fetchval(
                    "SELECT coalesce(sum(alert_count), 0) FROM incidents WHERE record->'labels'->>'alertname' = ANY($1)",
                    names,
                )
                if counted >= total:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return {"alerts": total, "fingerprints": fingerprints, "accepted_seconds": round(accepted, 2),
            "recorded_seconds": round(elapsed, 2), "alerts_per_second": round(total / elapsed, 1)}


async def commands(api: str, admin: str, count: int) -> dict:
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as client:
        declared = []
        for i in range(count):
            response = await client.post("/v1/incidents", json={"title": f"bench {i}", "service": "billing-worker"})
            response.raise_for_status()
            declared.append(response.json()["incident_id"])
        latencies = []
        for incident_id in declared:
            for path, body in (("acknowledge", {}), ("updates", {"message": "working on it"}), ("resolve", {})):
                started = time.perf_counter()
                (await client.post(f"/v1/incidents/{incident_id}/{path}", json=body)).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
    return {"commands": len(latencies), "p50_ms": round(pct(latencies, 0.5), 1),
            "p95_ms": round(pct(latencies, 0.95), 1), "max_ms": round(max(latencies), 1)}


async def scrapes(metrics_url: str, count: int) -> dict:
    latencies = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            (await client.get(metrics_url)).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return {"scrapes": count, "p50_ms": round(pct(latencies, 0.5), 1), "p95_ms": round(pct(latencies, 0.95), 1)}


def table(results: dict) -> str:
    rows = [
        ("intake, single alerts", f"{results['intake_single']['alerts_per_second']} alerts/s",
         f"p50 {results['intake_single']['p50_ms']} ms, p99 {results['intake_single']['p99_ms']} ms"),
        ("intake, batches of 50", f"{results['intake_batched']['alerts_per_second']} alerts/s",
         f"p50 {results['intake_batched']['p50_ms']} ms per request"),
        ("alert -> incident recorded", f"p50 {results['alert_to_incident']['p50_ms']} ms",
         f"p95 {results['alert_to_incident']['p95_ms']} ms"),
        ("whole pipeline (deduplicated)", f"{results['pipeline']['alerts_per_second']} alerts/s",
         f"{results['pipeline']['alerts']} alerts recorded in {results['pipeline']['recorded_seconds']} s"),
        ("API command round trip", f"p50 {results['commands']['p50_ms']} ms", f"p95 {results['commands']['p95_ms']} ms"),
        ("/metrics scrape", f"p50 {results['scrapes']['p50_ms']} ms", f"p95 {results['scrapes']['p95_ms']} ms"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)}  {'result':<22}  detail", "-" * (width + 50)]
    lines += [f"{a.ljust(width)}  {b:<22}  {c}" for a, b, c in rows]
    return "\n".join(lines)


async def run(args, platform: Platform) -> dict:
    creds = await tokens()
    api, key, admin = platform.api_url, creds["key"], creds["admin"]
    await intake(api, key, 200, 8, 1)  # warm-up: connections, caches, consumer assignments
    await drain()
    phases = {
        "intake_single": lambda: intake(api, key, args.alerts, 16, 1),
        "intake_batched": lambda: intake(api, key, args.alerts * 4, 8, 50),
        "alert_to_incident": lambda: alert_to_incident(api, key, admin, args.incidents),
        "pipeline": lambda: pipeline(api, key, args.alerts, 10),
        "commands": lambda: commands(api, admin, args.commands),
        "scrapes": lambda: scrapes(platform.metrics_url, 50),
    }
    results = {}
    for name, phase in phases.items():
        if args.only and name not in args.only:
            continue
        results[name] = await phase()
        # Each phase starts on an idle pipeline, so one phase's backlog never inflates the next.
        await drain()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--only", nargs="*", help="run only these phases")
    parser.add_argument("--out", type=Path, default=REPO / ".local" / "bench" / "results.json")
    args = parser.parse_args()
    env = test_environment()
    state = REPO / ".local" / "bench"
    env["DATA_DIR"] = str(state / "data")
    logs = state / "logs"
    (state / "run").mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    platform = Platform(env=env, logs=logs)
    for name in ("ingestion", "recorder", "triage", "escalation", "notification", "metrics"):
        platform.start(name)
    try:
        platform.wait_ready()
        results = asyncio.run(run(args, platform))
    finally:
        platform.stop_all()
    results["machine"] = {"cpus": os.cpu_count(), "python": host.python_version(), "platform": host.platform(),
                          "topic_partitions": int(env.get("TOPIC_PARTITIONS", "4"))}
    results["finished_at"] = datetime.now(timezone.utc).isoformat()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print()
    print(table(results) if not args.only else json.dumps(results, indent=2))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
