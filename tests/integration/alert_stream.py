"""A steady stream of alerts and people's commands, sent as monitoring and responders would,
with a ledger of what each request was answered: the input side of the fault tests' accounting.

Alerts go in batches from a few sender threads. A batch that gets no answer (the connection
refused, reset or timed out: ingestion was killed) or a 5xx is sent again until it is
accepted, as Alertmanager resends a group; its alerts then count as "resent". Every alert
carries its sequence number and the run's id in its annotations, which fingerprinting
ignores, so each copy on the intake topic can be traced back to the request that sent it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from harness import sql

RETRY_PAUSE = 0.2  # the resend delay of the senders (Alertmanager's is longer; the test is short)


@dataclass
class Ledger:
    """What the senders sent and how each request was answered (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0  # alerts put in a request at least once
    accepted: set[int] = field(default_factory=set)  # sequence numbers answered 202
    resent: set[int] = field(default_factory=set)  # sent again after no answer or a 5xx
    # Sent again after a request that may have reached the broker (reset or timed out, not
    # refused): only these may have two copies on the intake topic.
    uncertain: set[int] = field(default_factory=set)
    transport_errors: int = 0
    server_errors: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # 4xx: a bug of the test or the platform
    accepted_at: list[float] = field(default_factory=list)  # monotonic time of each 202, per alert
    commands: dict[str, str] = field(default_factory=dict)  # update message -> applied | accepted | unknown | refused:...
    acknowledged: dict[str, str] = field(default_factory=dict)

    def accepted_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t in self.accepted_at if start <= t < end)


class AlertStream:
    """Sender threads posting alerts for a growing set of alert names, and a responder thread."""

    def __init__(self, platform, integration_key: str, admin_token: str, run: str, service: str, *,
                 senders: int = 3, batch: int = 5, pause: float = 0.15, fingerprints_per_name: int = 3) -> None:
        self.platform, self.key, self.admin_token = platform, integration_key, admin_token
        self.run, self.service = run, service
        self.batch, self.pause, self.fingerprints = batch, pause, fingerprints_per_name
        self.ledger = Ledger()
        self.names: list[str] = []
        self._next = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send_loop, daemon=True, name=f"sender-{i}")
                         for i in range(senders)]
        self._threads.append(threading.Thread(target=self._respond_loop, daemon=True, name="responder"))

    def add_names(self, count: int) -> list[str]:
        """New alert names (so new incidents open, and are paged and told about, from now on)."""
        with self.ledger.lock:
            new = [f"Kill{len(self.names) + i}-{self.run}" for i in range(count)]
            self.names.extend(new)
            return new

    @property
    def next_seq(self) -> int:
        with self.ledger.lock:
            return self._next

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), f"{thread.name} did not stop"

    def _alerts(self) -> list[dict]:
        with self.ledger.lock:
            seqs = range(self._next, self._next + self.batch)
            self._next += self.batch
            self.ledger.sent += self.batch
            names = list(self.names)
        alerts = []
        for seq in seqs:
            index = seq % len(names)
            alerts.append({
                "service": self.service, "summary": f"{names[index]} firing", "severity": "warning",
                "dedup_key": f"{self.run}-{index}-{seq % self.fingerprints}",
                "labels": {"alertname": names[index]},
                "annotations": {"run": self.run, "seq": str(seq)},
            })
        return alerts

    def _send_loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.platform.api_url, headers=headers, timeout=10) as client:
            while not self._stop.is_set():
                alerts = self._alerts()
                seqs = [int(a["annotations"]["seq"]) for a in alerts]
                first = True
                while True:
                    error = None
                    try:
                        response = client.post("/v1/alerts", json=alerts)
                    except httpx.TransportError as exc:
                        status, error = None, exc
                    else:
                        status = response.status_code
                    with self.ledger.lock:
                        if not first:
                            self.ledger.resent.update(seqs)
                        if error is not None and not isinstance(error, httpx.ConnectError):
                            self.ledger.uncertain.update(seqs)
                        if status == 202:
                            self.ledger.accepted.update(seqs)
                            self.ledger.accepted_at.extend([time.monotonic()] * len(seqs))
                            break
                        if status is None:
                            self.ledger.transport_errors += 1
                        elif status >= 500:
                            self.ledger.server_errors += 1
                        else:
                            self.ledger.refused.append((status, response.text[:200]))
                            break
                    first = False
                    # Resend the same group after a pause, as Alertmanager does; the final
                    # resends run even after stop() so that no sent alert is left unanswered.
                    time.sleep(RETRY_PAUSE)
                self._stop.wait(self.pause)  # pacing of the stream, not a wait for a condition

    def incidents(self) -> dict[str, str]:
        """alert name -> incident id, for the names of this run that have an incident yet."""
        rows = sql("SELECT incident_id, record->'labels'->>'alertname' AS name FROM incidents"
                   " WHERE record->'labels'->>'alertname' = ANY($1::text[])", list(self.names))
        return {row["name"]: row["incident_id"] for row in rows}

    def _respond_loop(self) -> None:
        """A responder acknowledging each new incident once, then posting status updates."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        number = 0
        with httpx.Client(base_url=self.platform.api_url, headers=headers, timeout=30) as client:
            while not self._stop.wait(0.7):  # pacing, as above
                try:
                    known = sorted(self.incidents().values())
                except OSError:
                    continue
                if not known:
                    continue
                fresh = [i for i in known if i not in self.ledger.acknowledged]
                if fresh:
                    self.ledger.acknowledged[fresh[0]] = self._command(client, f"/v1/incidents/{fresh[0]}/acknowledge",
                                                                        {"note": f"on it ({self.run})"})
                    continue
                target = known[number % len(known)]
                message = f"status update {number} of {self.run}"
                number += 1
                self.ledger.commands[message] = self._command(client, f"/v1/incidents/{target}/updates",
                                                              {"message": message})

    @staticmethod
    def _command(client: httpx.Client, path: str, body: dict) -> str:
        """applied (200), accepted (503: on the broker, applied later), unknown (no answer), or refused."""
        while True:
            try:
                response = client.post(path, json=body)
                break
            except httpx.ConnectError:
                time.sleep(RETRY_PAUSE)  # ingestion is down: nothing was sent, so sending again is safe
            except httpx.TransportError:
                return "unknown"  # not resent: an update sent twice would be posted twice
        if response.status_code == 200:
            return "applied"
        if response.status_code == 503 and ("accepted but" in response.text or "applied, but" in response.text):
            return "accepted"
        return f"refused:{response.status_code}:{response.text[:200]}"
