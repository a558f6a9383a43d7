"""Steady traffic through a dependency's outage: alerts, reads and commands, each answer counted.

Each stream runs in a thread of its own at a fixed pace (a pace, not a wait for a
condition) until ``stop``; every answer is kept as (stream, path kind, status, body) so a
test can count 202s, 503s and 500s per phase and show the first of each.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Answer:
    stream: str
    path: str
    status: int
    body: str
    retry_after: str | None
    at: float  # time.monotonic()


@dataclass
class Accepted:
    alertname: str
    dedup_keys: list[str]
    at: float  # time.monotonic() of the answer


@dataclass
class OutageLoad:
    intake: httpx.Client
    reads: list[tuple[httpx.Client, str, str]]  # (client, path kind, path)
    command: httpx.Client
    command_path: str
    tag: str
    alerts_per_key: int = 4
    answers: list[Answer] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    sent: int = 0
    commands: list[tuple[int, dict]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for target, pace in ((self._alerts, 0.1), (self._reads, 0.05), (self._commands, 1.5)):
            thread = threading.Thread(target=self._loop, args=(target, pace), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, step, pace: float) -> None:
        n = 0
        while not self._stop.is_set():
            step(n)
            n += 1
            self._stop.wait(pace)  # the stream's pace

    def _keep(self, stream: str, kind: str, response: httpx.Response) -> None:
        with self._lock:
            # A refusal's whole page (the console's message is deep in its HTML); not every 200's.
            body = response.text[:300] if response.status_code == 200 else response.text[:20_000]
            self.answers.append(Answer(stream, kind, response.status_code, body,
                                       response.headers.get("retry-after"), time.monotonic()))

    def alertname(self, n: int) -> str:
        return f"PgDown-{self.tag}-{n // self.alerts_per_key}"

    def _alerts(self, n: int) -> None:
        # A new correlation key every few alerts: new incidents need ids while the database is away.
        name = self.alertname(n)
        alert = {"service": "scale-service", "summary": f"{name} #{n}", "severity": "warning",
                 "labels": {"alertname": name, "instance": f"{self.tag}-host-{n}"}}
        with self._lock:
            self.sent += 1
        response = self.intake.post("/v1/alerts", json=alert)
        self._keep("intake", "alerts", response)
        if response.status_code == 202:
            with self._lock:
                self.accepted.append(Accepted(name, response.json()["dedup_keys"], time.monotonic()))

    def _reads(self, n: int) -> None:
        client, kind, path = self.reads[n % len(self.reads)]
        try:
            response = client.get(path)
        except httpx.HTTPError as exc:  # counted as a failure, not raised out of the thread
            with self._lock:
                self.answers.append(Answer("read", kind, 0, repr(exc), None, time.monotonic()))
            return
        self._keep("read", kind, response)

    def _commands(self, n: int) -> None:
        response = self.command.post(self.command_path, json={"message": f"pg outage update {self.tag} #{n}"})
        self._keep("command", "updates", response)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        with self._lock:
            self.commands.append((response.status_code, body))

    def between(self, since: float, until: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if since <= a.at < until]

    def statuses(self, answers: list[Answer]) -> Counter:
        return Counter((a.stream, a.status) for a in answers)
