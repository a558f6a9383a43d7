"""A team's webhook receiver down (first refusing connections, then answering 503), then back.

Team ``hooks-outage`` posts to ``/outage`` on a loopback receiver this module controls,
with the production retry schedule (organisation.yaml sets only its url): 5 attempts,
back-off 1 s doubling (1, 2, 4, 8 s), so a notification is dead-lettered about 15 s after
its first attempt. The outage lasts a minute, through three notifications: one spends every
attempt against a closed port, one against 503s, and one fails four times and is delivered
on its fifth attempt once the receiver is back; a notification made after the return is
delivered on its first.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import read_topic, wait_until
from test_escalation import open_incident

SERVICE, TEAM = "outage-webhook-service", "hooks-outage"
ATTEMPTS, BACKOFF = 5, 1.0  # shared.domain.organisation.Webhook's defaults
DELAYS = [BACKOFF * 2 ** i for i in range(ATTEMPTS - 1)]  # 1, 2, 4, 8 s
SLACK = 5.0  # how much later than its back-off an attempt may come on a loaded machine
OUTAGE_SECONDS = 60.0  # the "down for a minute": refused, then 503, then back


class OutageReceiver:
    """A Slack-style webhook on loopback: ``down`` (nothing listens: refused), ``failing`` (503) or ``up`` (200)."""

    def __init__(self, port: int) -> None:
        self.port, self.mode = port, "down"
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def set(self, mode: str) -> float:
        """Switch to ``mode``; returns when (time.monotonic())."""
        self.mode = mode
        if mode != "down" and self.server is None:
            self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
            self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            self.thread.start()
        return time.monotonic()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 200 if receiver.mode == "up" else 503
                with receiver.lock:
                    receiver.posts.append({"path": self.path, "body": body, "at": time.monotonic(), "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        return Handler

    def opened_posts(self, incident_id: str) -> list[dict]:
        with self.lock:
            return [p for p in self.posts if p["path"] == "/outage" and p["body"]["attachments"][0]["title"] == incident_id
                    and p["body"]["text"].startswith("Incident opened")]


def webhook_log(admin, incident_id: str, until_status: str) -> list[dict]:
    """The communication log's webhook rows for the incident's opened notification, once one has ``until_status``."""

    def rows():
        log = admin.get(f"/v1/incidents/{incident_id}").json()["communication_log"]
        found = sorted((r for r in log if r["channel"] == f"webhook:{TEAM}" and r["kind"] == "opened"),
                       key=lambda r: r["attempt"])
        return found if any(r["status"] == until_status for r in found) else None

    return wait_until(rows, timeout=45, interval=0.3, what=f"the opened webhook of {incident_id} {until_status}")


def dead_letters(incident_id: str, wait: bool) -> list[dict]:
    return read_topic("notifications.dead-letter", lambda m: m["notification"]["incident_id"] == incident_id
                      and m["notification"]["kind"] == "opened", until=bool if wait else None, timeout=45)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 2) for a, b in zip(times, times[1:])]


def assert_backed_off(intervals: list[float], what: str) -> None:
    assert len(intervals) == len(DELAYS) and all(d <= i <= d + SLACK for i, d in zip(intervals, DELAYS)), (
        f"{what}: intervals {intervals}, expected at least {DELAYS} (and at most {SLACK} s later)")


def test_webhook_down_then_failing_dead_letters_with_the_reason_then_delivers_after_return(platform, intake, admin,
                                                                                           unique):
    receiver = OutageReceiver(int(platform.env["WEBHOOK_PORT"]))
    try:
        # 1. Nothing listens: every attempt is refused, then the dead letter says why.
        down_at = time.monotonic()
        refused = open_incident(intake, SERVICE, f"OutageRefused-{unique}")
        rows = webhook_log(admin, refused, "dead_lettered")
        assert [(r["status"], r["attempt"]) for r in rows] == [("failed", n) for n in range(1, ATTEMPTS)] + [
            ("dead_lettered", ATTEMPTS)], rows
        assert all(r["error"].startswith("ConnectError") for r in rows), [r["error"] for r in rows]
        attempted = [datetime.fromisoformat(r["occurred_at"]).timestamp() for r in rows]
        assert_backed_off(gaps(attempted), "refused")
        [letter] = dead_letters(refused, wait=True)
        assert letter["attempt"] == ATTEMPTS and letter["last_error"].startswith("ConnectError"), letter
        assert letter["url"].endswith("/outage") and letter["_key"] == refused and letter["notification"]["team"] == TEAM
        print(f"\nFAULT webhook refused: {len(rows)} attempts, back-off {gaps(attempted)} s,"
              f" dead letter {attempted[-1] - attempted[0]:.1f} s after the first attempt: {letter['last_error']!r}")

        # 2. The receiver answers 503: the attempts are seen on its side, then the dead letter.
        receiver.set("failing")
        failing = open_incident(intake, SERVICE, f"OutageFailing-{unique}")
        [letter] = dead_letters(failing, wait=True)
        posts = receiver.opened_posts(failing)
        assert [p["status"] for p in posts] == [503] * ATTEMPTS, posts
        assert_backed_off(gaps([p["at"] for p in posts]), "503")
        assert letter["attempt"] == ATTEMPTS and letter["last_error"] == "HTTP 503", letter
        rows = webhook_log(admin, failing, "dead_lettered")
        assert [r["status"] for r in rows] == ["failed"] * (ATTEMPTS - 1) + ["dead_lettered"]
        print(f"FAULT webhook 503: {len(posts)} attempts on the receiver, back-off {gaps([p['at'] for p in posts])} s,"
              f" dead letter {posts[-1]['at'] - posts[0]['at']:.1f} s after the first attempt: {letter['last_error']!r}")

        # 3. A notification mid-retry when the receiver comes back is delivered on its next attempt.
        # The receiver stays failing for the rest of the minute: the outage's length is the
        # scenario, not a wait for something. The pending notification is opened late enough
        # that its four failures end the minute (1 + 2 + 4 s between them), and its fifth
        # attempt, 8 s after the fourth, meets the receiver back.
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - sum(DELAYS[:-1]) - time.monotonic()))
        pending = open_incident(intake, SERVICE, f"OutagePending-{unique}")
        wait_until(lambda: len(receiver.opened_posts(pending)) == ATTEMPTS - 1, timeout=45, interval=0.1,
                   what=f"{ATTEMPTS - 1} failed attempts for {pending}")
        up_at = receiver.set("up")
        rows = webhook_log(admin, pending, "sent")
        posts = receiver.opened_posts(pending)
        assert [p["status"] for p in posts] == [503] * (ATTEMPTS - 1) + [200], posts
        assert [(r["status"], r["attempt"]) for r in rows] == [("failed", n) for n in range(1, ATTEMPTS)] + [
            ("sent", ATTEMPTS)], rows
        assert_backed_off(gaps([p["at"] for p in posts]), "pending")
        outage = up_at - down_at
        assert outage >= OUTAGE_SECONDS, f"the receiver was away {outage:.1f} s, not a minute"
        print(f"FAULT webhook outage {outage:.1f} s; the pending notification delivered on attempt {ATTEMPTS},"
              f" {posts[-1]['at'] - up_at:.1f} s after the return")

        # 4. After the return a new notification is delivered at once, on its first attempt.
        opened = time.monotonic()
        fresh = open_incident(intake, SERVICE, f"OutageBack-{unique}")
        rows = webhook_log(admin, fresh, "sent")
        posts = receiver.opened_posts(fresh)
        assert [(r["status"], r["attempt"]) for r in rows] == [("sent", 1)] and [p["status"] for p in posts] == [200]
        print(f"FAULT webhook after the return: delivered on attempt 1, {posts[0]['at'] - opened:.1f} s after the alert")
        assert dead_letters(pending, wait=False) == [] and dead_letters(fresh, wait=False) == []
    finally:
        receiver.close()
