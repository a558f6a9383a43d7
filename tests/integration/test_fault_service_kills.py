"""Every service SIGKILLed in turn, each in the middle of a burst of alerts and commands, and
restarted by its supervisor: the accounting afterwards is exact.

One stream runs through the whole test (alerts in batches from two senders, a responder
acknowledging and posting updates); before each kill two new alert names start, so the
kill lands while incidents are opening, being paged and told about. Then, counted from
the broker's and PostgreSQL's own records (alert_stream.py, fault_accounting.py):

- lost 0: every alert answered 202 is counted by exactly one audit event, on one incident
  (a batch that got no answer from a killed ingestion is resent until it gets a 202);
- duplicate incidents 0: one incident per alert name;
- audit row duplicates 0: one audit event per incident version, none counting an alert twice;
- every notifying audit event told on the team topic and in the communication log; the
  topic's duplicates within the at-least-once bound (BOUND below);
- every update a person got an answer for posted exactly once;
- the metrics exporter equal to SQL over PostgreSQL.
"""
from __future__ import annotations

import signal
import time

from alert_stream import AlertStream
from fault_accounting import ONCE_PER_INCIDENT, Accounting, NotificationCount, intake_copies
from harness import sql, wait_until, wait_while_progressing
from metrics_queries import wait_for_agreement

KILL_ORDER = ("ingestion", "triage", "escalation", "notification", "metrics", "recorder", "web")
SERVICE, TEAM = "billing-worker", "payments"  # SEV3, the slow policy: pages its first level at once
LEAD = 40  # alerts accepted in a step before its kill: the burst is running when it lands
# The at-least-once bound of the team topic. The notification service sends a notification
# (and its log entry) before it records the audit version in its table and before its
# consumer commits the event's offset (every broker_commit_interval, 1 s). A SIGKILL in
# between loses both, and the restarted service reads the event again and sends again. So
# a duplicate is a notification first sent by the killed process shortly before the kill,
# each at most once per kill; "shortly": a commit stalled longer than LIVENESS_SECONDS
# (15 s in the tests) makes the liveness watchdog restart the service anyway.
BOUND_SECONDS = 15.0


def _step(platform, stream: AlertStream, name: str) -> dict:
    """Kill ``name`` mid-burst; how long it took to be ready again, and the burst around it."""
    ledger = stream.ledger
    first_seq = stream.next_seq
    started = time.monotonic()
    wait_until(lambda: ledger.accepted_between(started, time.monotonic() + 1) >= LEAD, timeout=60,
               what=f"{LEAD} alerts accepted before killing {name}")
    killed_mono, killed_wall = time.monotonic(), time.time()
    old = platform.child_pid(name)
    new = platform.kill(name, signal.SIGKILL)
    platform.wait_ready(name, timeout=90)
    ready = time.monotonic()
    # The burst goes on after the restart: alerts are accepted again (ingestion) or still (others).
    wait_until(lambda: ledger.accepted_between(ready, time.monotonic() + 1) >= LEAD // 2, timeout=60,
               what=f"alerts accepted after {name} restarted")
    return {
        "service": name, "old_pid": old, "new_pid": new, "killed_wall": killed_wall,
        "recovery_s": round(ready - killed_mono, 1),
        "accepted_in_the_second_before": ledger.accepted_between(killed_mono - 1, killed_mono),
        "accepted_while_down": ledger.accepted_between(killed_mono, ready),
        "seqs": range(first_seq, stream.next_seq),
    }


def test_every_service_killed_mid_burst_nothing_lost_nothing_doubled(platform, tokens, unique):
    since = time.time() - 1
    stream = AlertStream(platform, tokens["integration"], tokens["platform-admin"], unique, SERVICE, senders=2, pause=0.2)
    stream.add_names(2)
    steps = []
    began = time.monotonic()
    stream.start()
    try:
        for name in KILL_ORDER:
            stream.add_names(2)  # incidents open, are paged and told about around this kill
            steps.append(_step(platform, stream, name))
            print(f"\nFAULT killed {name}: ready again in {steps[-1]['recovery_s']}s", flush=True)
    finally:
        stream.stop()  # the last unanswered batches are resent until accepted
    ledger = stream.ledger
    streamed = time.monotonic() - began
    assert not ledger.refused, f"alerts refused with a 4xx: {ledger.refused[:3]}"
    names = list(stream.names)

    # Every accepted alert is on the intake topic now; settle until each copy is counted on an
    # incident and each update answered is posted (cheap to poll: two queries).
    copies = intake_copies(unique, since)
    answered = {m for m, outcome in ledger.commands.items() if outcome in ("applied", "accepted")}

    def settled():
        [row] = sql("SELECT coalesce(sum(alert_count), 0) AS n FROM incidents"
                    " WHERE record->'labels'->>'alertname' = ANY($1::text[])", names)
        [posted] = sql("SELECT count(*) AS n FROM audit_events WHERE change = 'update_posted'"
                       " AND data->>'message' = ANY($1::text[])", sorted(answered))
        return row["n"] >= sum(len(c) for c in copies.values()) and posted["n"] >= len(answered)

    settle_started = time.monotonic()
    try:
        wait_until(settled, timeout=120, interval=1.0, what=f"{len(ledger.accepted)} accepted alerts counted")
    except AssertionError as exc:
        books = Accounting.read(copies, names)
        raise AssertionError(f"{exc}; {books.figures(ledger)} {books.totals()}") from None
    books = Accounting.read(copies, names)
    settled_after = time.monotonic() - settle_started

    totals = books.totals()
    whole = books.figures(ledger)
    print(f"\nFAULT service-kills stream {streamed:.0f}s, settled {settled_after:.0f}s later: {whole} {totals}")
    for step in steps:
        figures = books.figures(ledger, step["seqs"])
        print(f"FAULT kill {step['service']}: recovery {step['recovery_s']}s, accepted in the second before "
              f"{step['accepted_in_the_second_before']}, while down {step['accepted_while_down']}; {figures}")
        assert figures["lost"] == 0, f"{step['service']}: {figures}"
        assert step["accepted_in_the_second_before"] > 0, f"the kill of {step['service']} landed between bursts"
        if step["service"] != "ingestion":
            assert step["accepted_while_down"] > 0, f"intake stopped while {step['service']} was down: {step}"
    assert whole["lost"] == 0 and whole["accounted"] == whole["accepted"] == whole["sent"], (whole, totals)
    # A second copy on the intake topic only where the sender could not know the first was stored.
    assert whole["twice_not_uncertain"] == 0, whole
    assert totals["duplicate_incidents"] == 0 and totals["incidents"] == len(names), (totals, books.incidents)
    assert totals["double_counted"] == 0 and totals["audit_row_duplicates"] == 0, totals
    assert totals["alert_count_sum"] == totals["alerts_counted"], totals

    incident_ids = {i for ids in books.incidents.values() for i in ids}
    # Every notifying audit event told once on the team topic and in the communication log.
    notifying = {f"{e['event_id']}:{TEAM}" for e in books.events
                 if e["change"] in ("opened", "acknowledged", "update_posted", "escalated")}
    last: dict = {}

    def told():
        notes = last["notes"] = NotificationCount.read(TEAM, incident_ids, since)
        return notes

    def complete(notes) -> bool:
        return set(notes.copies) >= notifying and notes.logged >= notifying

    try:
        # While the notifications still come (a loaded machine tells the last of them late), not
        # for a fixed minute: a stall of 60 s is a notification that is not coming.
        notes = wait_while_progressing(told, complete, "every notification on the topic and in the log",
                                       amount=lambda n: len(set(n.copies) & notifying) + len(n.logged & notifying),
                                       stall=60, limit=600)
    except AssertionError as exc:
        notes = last.get("notes")
        raise AssertionError(f"{exc}; missing on the topic {sorted(notifying - set(notes.copies))[:5]},"
                             f" in the log {sorted(notifying - notes.logged)[:5]}") from None
    duplicates = notes.duplicates()
    killed = next(s for s in steps if s["service"] == "notification")["killed_wall"]
    print(f"FAULT notifications on notifications.{TEAM}: {len(notes.copies)} ({notes.kind_totals()}),"
          f" duplicates {sum(len(t) - 1 for t in duplicates.values())}, per incident {notes.per_incident()},"
          f" repeated once-only kinds {notes.repeated_kinds()}")
    for step in steps:
        near = [nid for nid, times in duplicates.items()
                if step["killed_wall"] - BOUND_SECONDS <= min(times) <= step["killed_wall"]]
        print(f"FAULT notification duplicates first sent within {BOUND_SECONDS:.0f}s before the {step['service']}"
              f" kill: {len(near)}")
    assert set(notes.copies) == notes.logged, "the topic and the communication log differ"
    assert not notes.repeated_kinds(), f"a second {ONCE_PER_INCIDENT} notification: {notes.repeated_kinds()}"
    for nid, times in duplicates.items():
        assert len(times) == 2 and killed - BOUND_SECONDS <= min(times) <= killed, (
            f"{nid}: copies at {[round(t - killed, 1) for t in times]} s from the notification kill, "
            f"outside the bound (one extra copy, first sent at most {BOUND_SECONDS:.0f} s before the kill)")

    # People's commands: each update answered is posted exactly once; none posted twice.
    posted: dict[str, int] = {}
    for event in books.events:
        if event["change"] == "update_posted":
            posted[event["data"]["message"]] = posted.get(event["data"]["message"], 0) + 1
    outcomes = {o.split(":")[0]: list(ledger.commands.values()).count(o) for o in set(ledger.commands.values())}
    print(f"FAULT commands: {len(ledger.commands)} updates ({outcomes}), {len(ledger.acknowledged)} acknowledgements"
          f" ({sorted(set(ledger.acknowledged.values()))}), posted {sum(posted.values())}")
    assert not [o for o in ledger.commands.values() if o.startswith("refused")], ledger.commands
    assert all(posted.get(m) == 1 for m in answered), {m: posted.get(m) for m in answered if posted.get(m) != 1}
    assert max(posted.values(), default=1) == 1, posted
    assert answered and len(ledger.acknowledged) >= len(names) // 2, (len(answered), ledger.acknowledged)

    wait_for_agreement(platform, timeout=60)
