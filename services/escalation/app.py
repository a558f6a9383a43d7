"""Escalation: acknowledgement deadlines and reminders as data in a table, nudged by a timer."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import faust

from shared import catalogue as cat
from shared.domain.oncall import with_overrides
from shared.domain.organisation import Organisation
from shared.kafka.deadlines import deadline_timer
from shared.kafka.faust_app import create_app, declare, guarded_agent, table
from shared.kafka.streams import Outbox, decode, key_of, origin_of, send_model
from shared.kafka.view import Derived, whole_topic
from shared.messages import AuditEvent, AuditHead, DeadlineCheck
from shared.settings import Settings

from . import heartbeats, maintenance_hold
from .handlers import Deadlines, on_audit, on_check

log = logging.getLogger("escalation")
SERVICE = "escalation"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def build(settings: Settings, org: Organisation) -> faust.App:
    app = create_app(SERVICE, settings)
    n = settings.topic_partitions
    audit = declare(app, cat.INCIDENT_AUDIT, n)
    checks = declare(app, cat.DEADLINE_CHECKS, n)
    commands = declare(app, cat.INCIDENT_COMMANDS, n)
    dead = declare(app, cat.DEAD_LETTER, n)
    deadlines = table(app, "deadlines", n)
    # Runtime overrides decide whom a rotation target pages.
    overrides = whole_topic(app, settings, cat.ONCALL_OVERRIDES, SERVICE)
    org_with_overrides = Derived(overrides, lambda items: with_overrides(org, items))
    windows = whole_topic(app, settings, cat.MAINTENANCE_WINDOWS, SERVICE)

    async def _on_call(fresh: bool) -> Organisation:
        """The organisation with its overrides; with ``fresh``, both topics caught up with (at once)."""
        if fresh:
            await asyncio.gather(overrides.sync(), windows.sync())
        return await org_with_overrides.get(fresh=False)

    async def follow(event) -> None:
        """Follow the incident's life and act on its due deadlines."""
        key = key_of(event)
        origin = origin_of(event)
        record = Deadlines.model_validate(deadlines.get(key) or {})
        now = utcnow()
        if origin.topic == cat.DEADLINE_CHECKS.name:
            check = await decode(event, DeadlineCheck, dead, SERVICE)
            if check is None:
                return
            in_flight.seen(key)
            current = await _on_call(fresh=True)
            updated, envelopes = on_check(record, key, current, origin, now, windows.values())
        else:
            head = await decode(event, AuditHead, dead, SERVICE)
            if head is None or head.only_an_alert:
                return  # an alert attaching changes no deadline
            message = AuditEvent.model_validate_json(event.value)
            # Only an opening pages (or is held) at once: only then must a new window or override count.
            current = await _on_call(fresh=message.change in ("opened", "reopened"))
            updated, envelopes = on_audit(record, message, current, origin, now, windows.values())
        outbox = Outbox()
        for envelope in envelopes:
            await outbox.send(commands, key, envelope)
        await outbox.confirm()
        if updated != record:
            deadlines[key] = updated.model_dump(mode="json")

    def due_of(_: str, value: dict) -> datetime | None:
        if "next_due" in value:
            due = datetime.fromisoformat(value["next_due"]) if value["next_due"] else None
        else:
            due = Deadlines.model_validate(value).next_due  # a value stored before next_due was kept with it
        if value.get("held"):  # a window deleted early ends its hold now
            ends = maintenance_hold.due(value["held"], {w.window_id: w for w in windows.values()})
            due = min(due, ends) if due is not None else ends
        return due

    in_flight = deadline_timer(app, "nudge", settings.tick_seconds, deadlines, due_of,
                               lambda key, due: send_model(checks, key, DeadlineCheck(incident_id=key, due=due)))

    # Declared so Faust knows the topics (created with their partitions by the runner).
    _ = (audit, checks)

    # One agent reads both topics, so a deadline is never changed by two coroutines at once.
    both = app.topic(cat.INCIDENT_AUDIT.name, cat.DEADLINE_CHECKS.name, key_serializer="raw", value_serializer="raw")
    guarded_agent(app, both, follow, dead, SERVICE)
    heartbeats.install(app, settings, org, dead)
    return app
