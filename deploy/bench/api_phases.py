"""The API's own round trips: people's commands and a Prometheus scrape."""
from __future__ import annotations

import time

import httpx

from load import pct


async def commands(api: str, admin: str, count: int) -> dict:
    """Declare ``count`` incidents, then acknowledge, update and resolve each (answered once applied)."""
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
