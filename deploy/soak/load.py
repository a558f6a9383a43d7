"""The soak's steady load: alerts (singles and batches) and people's commands, at a bounded rate.

Alerts run over ``keys`` correlation keys (a service and an alert name each; the test
organisation groups by alert name) with ``hosts`` fingerprints per key (the ``instance``
label). One key in ten sends a native ``dedup_key``, so its alerts take triage's other
road (``route``, keyed by fingerprint). About one alert in ten is a resolve of a
fingerprint that has fired before (a resolve of nothing would rightly be dropped).

The ledger counts, per fingerprint, the alerts answered 2xx (accepted: each must be on
its incident exactly once) and those whose fate the client cannot know (a timeout or a
5xx: the broker may or may not hold them), so that the check can allow for those and
nothing else.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from shared.domain.alerts import fingerprint_of
from shared.domain.organisation import Organisation

SERVICES = ("billing-worker", "checkout-api", "connector:CRM")
COMMANDS = ("acknowledge", "updates", "mitigations", "evidence", "resolve", "close", "reopen")


@dataclass(frozen=True)
class Key:
    service: str
    alertname: str
    dedup: bool  # sends a native dedup_key (triage's route road)


def keys_of(run: str, count: int) -> list[Key]:
    return [Key(SERVICES[i % len(SERVICES)], f"Soak{run}-{i:03d}", i % 10 == 0) for i in range(count)]


@dataclass
class Ledger:
    accepted: Counter = field(default_factory=Counter)  # fingerprint -> alerts answered 2xx
    uncertain: Counter = field(default_factory=Counter)  # fingerprint -> alerts answered 5xx or not at all
    key_of: dict[str, Key] = field(default_factory=dict)  # fingerprint -> its correlation key
    statuses: Counter = field(default_factory=Counter)  # alert requests by answer ("error" when none)
    sent: int = 0  # alerts sent (in requests that left the client)
    refused: list[str] = field(default_factory=list)  # 4xx answers to valid alerts: never expected
    fingerprint_mismatches: int = 0  # answers naming another fingerprint than the alert's
    commands: Counter = field(default_factory=Counter)  # (command, answer)
    command_5xx: list[str] = field(default_factory=list)

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())


class Load:
    """Sends until ``stop`` is set: ``rate`` alerts/s and ``command_rate`` commands/s."""

    def __init__(self, api_url: str, key: str, admin_token: str, org: Organisation, run: str, *, rate: float = 30.0,
                 keys: int = 300, hosts: int = 10, command_rate: float = 2.0, seed: int = 0,
                 incidents=None, max_in_flight: int = 32) -> None:
        self.api_url, self.key, self.admin_token, self.org = api_url, key, admin_token, org
        self.run_id, self.rate, self.hosts, self.command_rate = run, rate, hosts, command_rate
        self.keys = keys_of(run, keys)
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        # () -> [(incident_id, status)]: the soak's incidents as PostgreSQL has them (commands pick from these).
        self.incidents = incidents or (lambda: [])
        self.max_in_flight = max_in_flight
        self.fired: set[tuple[Key, int]] = set()

    def alert(self, key: Key, host: int, resolved: bool) -> tuple[dict, str]:
        labels = {"alertname": key.alertname, "instance": f"host-{host}", "soak": self.run_id}
        body = {"service": key.service, "summary": f"{key.alertname} on host-{host}", "severity": "warning",
                "labels": labels}
        if key.dedup:
            body["dedup_key"] = f"{key.alertname}-host-{host}"
        if resolved:
            body["status"] = "resolved"
        fp = fingerprint_of(body.get("dedup_key"), key.service, key.alertname, labels, self.org)
        self.ledger.key_of[fp] = key
        return body, fp

    def request(self) -> list[tuple[dict, str]]:
        """One request's alerts: a single (two in three) or a batch of 2 to 20."""
        size = 1 if self.rng.random() < 2 / 3 else self.rng.randint(2, 20)
        alerts = []
        for _ in range(size):
            key, host = self.rng.choice(self.keys), self.rng.randrange(self.hosts)
            resolved = (key, host) in self.fired and self.rng.random() < 0.1
            alerts.append(self.alert(key, host, resolved))
            self.fired.add((key, host))
        return alerts

    async def send(self, client: httpx.AsyncClient, alerts: list[tuple[dict, str]]) -> None:
        bodies = [body for body, _ in alerts]
        try:
            response = await client.post("/v1/alerts", json=bodies[0] if len(bodies) == 1 else bodies)
        except httpx.ConnectError:
            self.ledger.statuses["not connected"] += 1  # never reached intake: nothing was taken in
            return
        except httpx.HTTPError as exc:
            self.ledger.statuses[type(exc).__name__] += 1
            self.ledger.sent += len(alerts)
            self.ledger.uncertain.update(fp for _, fp in alerts)
            return
        self.ledger.sent += len(alerts)
        self.ledger.statuses[response.status_code] += 1
        if 200 <= response.status_code < 300:
            answered = response.json()["dedup_keys"]
            self.ledger.fingerprint_mismatches += sum(a != fp for a, (_, fp) in zip(answered, alerts))
            self.ledger.accepted.update(fp for _, fp in alerts)
        elif response.status_code >= 500:
            self.ledger.uncertain.update(fp for _, fp in alerts)
        else:
            self.ledger.refused.append(f"{response.status_code} {response.text[:200]}")

    async def alerts(self, stop: asyncio.Event) -> None:
        gate = asyncio.Semaphore(self.max_in_flight)
        pending: set[asyncio.Task] = set()
        async with httpx.AsyncClient(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key}"},
                                     timeout=15) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                batch = self.request()
                await gate.acquire()  # bounded: a stalled intake slows the load, never piles it up

                async def one(batch=batch):
                    try:
                        await self.send(client, batch)
                    finally:
                        gate.release()

                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += len(batch) / self.rate
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic() - 1.0)  # after an outage, no catch-up burst
            if pending:
                await asyncio.gather(*pending)

    def command(self, incidents: list[tuple[str, str]]) -> tuple[str, str, dict] | None:
        """A command for one of the soak's incidents: mostly what its status allows, sometimes not (a 409)."""
        if not incidents:
            return None
        incident_id, status = self.rng.choice(incidents)
        fitting = {"triggered": ["acknowledge", "mitigations", "updates"],
                   "acknowledged": ["resolve", "mitigations", "updates", "evidence"],
                   "mitigating": ["resolve", "updates", "evidence"],
                   "resolved": ["close", "reopen", "updates"], "closed": ["reopen"]}.get(status, list(COMMANDS))
        kind = self.rng.choice(fitting if self.rng.random() < 0.8 else COMMANDS)
        body = {"acknowledge": {}, "updates": {"message": "soak: still looking"},
                "mitigations": {"description": "soak: traffic shifted"},
                "evidence": {"title": "soak log", "content": "soak evidence"}, "resolve": {"note": "soak"},
                "close": {"verification": "soak: verified"}, "reopen": {"reason": "soak: again"}}[kind]
        return incident_id, kind, body

    async def commands(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.api_url, headers={"Authorization": f"Bearer {self.admin_token}"},
                                     timeout=30) as client:
            incidents, listed_at = [], 0.0
            while not stop.is_set():
                if time.monotonic() - listed_at > 5:
                    try:
                        incidents = await asyncio.to_thread(self.incidents)
                    except Exception:  # noqa: BLE001 - PostgreSQL busy or a restart: keep the last list
                        pass
                    listed_at = time.monotonic()
                picked = self.command(incidents)
                if picked is not None:
                    incident_id, kind, body = picked
                    try:
                        response = await client.post(f"/v1/incidents/{incident_id}/{kind}", json=body)
                        answer = str(response.status_code)
                        if response.status_code >= 500:
                            self.ledger.command_5xx.append(f"{kind} {incident_id}: {response.status_code} "
                                                           f"{response.text[:160]}")
                    except httpx.HTTPError as exc:
                        answer = type(exc).__name__
                    self.ledger.commands[(kind, answer)] += 1
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1 / self.command_rate)
                except asyncio.TimeoutError:
                    pass

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self.alerts(stop), self.commands(stop))
