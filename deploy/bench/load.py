"""The load the bench drives: the same alerts, in our native format and in Alertmanager's.

One aiohttp client for both targets, bodies encoded before the clock starts so that
the client spends the same (small) effort per request on either side.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import aiohttp

SERVICES = [f"bench-svc-{i:02d}" for i in range(50)]


def key_set(prefix: str) -> list[tuple[str, str]]:
    """50 services x 10 alert names: 500 correlation keys (the bench organisation groups by
    alertname). Each phase has its own prefix, so what it recorded is told apart."""
    return [(service, f"{prefix}{i}") for service in SERVICES for i in range(10)]


def labels(service: str, name: str, instance: str) -> dict[str, str]:
    return {"alertname": name, "service": service, "severity": "warning", "instance": instance}


def native(service: str, name: str, instance: str, summary: str | None = None) -> dict:
    return {"service": service, "summary": summary or f"{name} on {service}", "severity": "warning",
            "labels": labels(service, name, instance)}


def alertmanager(service: str, name: str, instance: str, ends_at: str) -> dict:
    # What Prometheus posts to Alertmanager: labels, annotations, a start and an end in the future.
    return {"labels": labels(service, name, instance), "annotations": {"summary": f"{name} on {service}"},
            "startsAt": datetime.now(timezone.utc).isoformat(), "endsAt": ends_at}


@dataclass
class Bodies:
    """Encoded request bodies, each with the correlation keys of the alerts it carries."""

    raw: list[bytes]
    keys: list[Counter]

    @property
    def alerts_per_body(self) -> list[int]:
        return [sum(k.values()) for k in self.keys]


def bodies(target: str, batch: int, count: int, prefix: str = "BenchAlert") -> Bodies:
    """``count`` bodies of ``batch`` alerts, cycling over 500 keys and 20 instances per key."""
    ends_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    keyset = key_set(prefix)
    raw, keys = [], []
    n = 0
    for _ in range(count):
        alerts, counted = [], Counter()
        for _ in range(batch):
            service, name = keyset[n % len(keyset)]
            instance = f"host-{(n // len(keyset)) % 20}"
            alerts.append(native(service, name, instance) if target == "intake"
                          else alertmanager(service, name, instance, ends_at))
            counted[(service, name)] += 1
            n += 1
        # Our API takes one alert as an object; Alertmanager's takes a list always.
        body = alerts[0] if target == "intake" and batch == 1 else alerts
        raw.append(json.dumps(body).encode())
        keys.append(counted)
    return Bodies(raw, keys)


def fleet_bodies(alerts: int, batch: int, service: str, name: str) -> Bodies:
    """A fleet outage: ``alerts`` alerts from as many hosts (each its own fingerprint, the
    organisation's fingerprint label is ``instance``), all on one correlation key."""
    raw, keys = [], []
    for start in range(0, alerts, batch):
        size = min(batch, alerts - start)
        raw.append(json.dumps([native(service, name, f"fleet-host-{start + i:06d}") for i in range(size)]).encode())
        keys.append(Counter({(service, name): size}))
    return Bodies(raw, keys)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Outcome:
    requests: int = 0
    alerts: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    accepted: Counter = field(default_factory=Counter)  # alerts accepted per correlation key

    def summary(self) -> dict:
        rate = self.alerts / self.seconds if self.seconds else 0.0
        return {"alerts": self.alerts, "requests": self.requests, "seconds": round(self.seconds, 2),
                "alerts_per_s": round(rate, 1), "statuses": dict(self.statuses),
                "p50_ms": round(pct(self.latencies_ms, 0.5), 2), "p99_ms": round(pct(self.latencies_ms, 0.99), 2)}


def session(concurrency: int, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120),
                                 headers={"Content-Type": "application/json", **(headers or {})})


async def closed_loop(client: aiohttp.ClientSession, url: str, load: Bodies, concurrency: int,
                      seconds: float = float("inf"), once: bool = False) -> Outcome:
    """``concurrency`` clients, each sending its next body as soon as the last was answered,
    for ``seconds`` (cycling over the bodies) or, with ``once``, until every body was sent once."""
    out = Outcome()
    sizes = load.alerts_per_body
    accepted_bodies: Counter = Counter()
    state = {"next": 0}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline and not (once and state["next"] >= len(load.raw)):
            index = state["next"] % len(load.raw)
            state["next"] += 1
            started = time.perf_counter()
            async with client.post(url, data=load.raw[index]) as response:
                await response.read()
                status = response.status
            out.latencies_ms.append((time.perf_counter() - started) * 1000)
            out.statuses[status] += 1
            out.requests += 1
            if 200 <= status < 300:
                out.alerts += sizes[index]
                accepted_bodies[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.seconds = time.perf_counter() - started
    for index, times in accepted_bodies.items():
        for key, n in load.keys[index].items():
            out.accepted[key] += n * times
    return out


async def offered(client: aiohttp.ClientSession, url: str, load: Bodies, rate: float, seconds: float,
                  max_in_flight: int = 256) -> Outcome:
    """Open loop: a body every 1/rate seconds whatever the answers, for ``seconds`` (a storm)."""
    out = Outcome()
    sizes = load.alerts_per_body
    in_flight: set[asyncio.Task] = set()
    skipped = 0

    async def send(index: int) -> None:
        started = time.perf_counter()
        try:
            async with client.post(url, data=load.raw[index]) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status = 0
        out.latencies_ms.append((time.perf_counter() - started) * 1000)
        out.statuses[status] += 1
        out.requests += 1
        if 200 <= status < 300:
            out.alerts += sizes[index]
            for key, n in load.keys[index].items():
                out.accepted[key] += n

    started = time.perf_counter()
    n = 0
    while (due := started + n / rate) < started + seconds:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            skipped += 1  # the target is this far behind: offered, but never sent
            out.statuses["not_sent"] += 1
        else:
            task = asyncio.create_task(send(n % len(load.raw)))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        n += 1
    if in_flight:
        await asyncio.gather(*in_flight)
    out.seconds = time.perf_counter() - started
    return out
