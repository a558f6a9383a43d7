"""A paced stream of Alertmanager webhooks from several clients that behave like Alertmanager:
a group answered 503 is sent again after Retry-After, until it is taken. Every response is kept
(status, when it was sent, how long it took), so a fault test can say what the sender saw."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

CLIENT_TIMEOUT = 15.0  # what the sender gives a request before it gives up (and sends it again)


@dataclass
class Response:
    group: int
    status: int | None  # None: no answer within CLIENT_TIMEOUT, or the connection failed
    sent_at: float  # time.monotonic()
    seconds: float


@dataclass
class Stream:
    groups: list[list[dict]]  # each an Alertmanager group: the alerts of one webhook
    seconds: float  # the schedule: group i is due at start + i * seconds / len(groups)
    responses: list[Response] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # fingerprint -> 2xx answers that carried it
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, url: str, key: str, clients: int = 8) -> None:
        start = time.monotonic()
        turns = iter(range(len(self.groups)))

        def client() -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                              timeout=CLIENT_TIMEOUT) as http:
                while True:
                    with self._lock:
                        index = next(turns, None)
                    if index is None:
                        return
                    due = start + index * self.seconds / len(self.groups)
                    # The sender's schedule (a steady trickle), not a wait for a condition.
                    time.sleep(max(0.0, due - time.monotonic()))
                    self._deliver(http, index)

        with ThreadPoolExecutor(max_workers=clients) as pool:
            for future in [pool.submit(client) for _ in range(clients)]:
                future.result()

    def _deliver(self, http: httpx.Client, index: int) -> None:
        body = _webhook(self.groups[index])
        while True:
            sent = time.monotonic()
            try:
                answer = http.post("/v1/integrations/alertmanager", json=body)
                status, retry_after = answer.status_code, float(answer.headers.get("Retry-After", "1"))
            except httpx.HTTPError:
                status, retry_after = None, 1.0
            with self._lock:
                self.responses.append(Response(index, status, sent, time.monotonic() - sent))
                if status is not None and 200 <= status < 300:
                    for alert in self.groups[index]:
                        self.accepted[alert["fingerprint"]] = self.accepted.get(alert["fingerprint"], 0) + 1
            if status is not None and status < 500:
                return  # taken, or refused for good (a 4xx is not retried by Alertmanager either)
            time.sleep(retry_after)  # Alertmanager's own back-off before it sends the group again


def _webhook(alerts: list[dict]) -> dict:
    name = alerts[0]["labels"]["alertname"]
    return {"version": "4", "status": "firing", "receiver": "incidents", "groupKey": f"{{}}:{{alertname={name}}}",
            "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name}, "alerts": alerts}


def alert(name: str, service: str, fingerprint: str, host: int) -> dict:
    return {"status": "firing", "fingerprint": fingerprint, "startsAt": "2026-12-01T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": name, "service": service, "severity": "warning", "instance": f"host-{host}"},
            "annotations": {"summary": f"{name} on host-{host}"}}
