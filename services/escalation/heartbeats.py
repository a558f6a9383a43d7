"""Heartbeat deadlines, kept as data in the escalation service (the service that keeps deadlines).

Pings come from ingestion on ``heartbeats.pings``; a timer only sends
``heartbeats.checks`` nudges for heartbeats whose deadline passed, and the agent (one
for both topics, keyed by heartbeat name) re-checks and acts. A missed beat is a native
alert on ``alerts.intake`` (so it is fingerprinted, correlated, classified, paged and
recorded like any alert); the next ping sends its resolve with the same dedup key.
"""
from __future__ import annotations

from datetime import datetime, timezone

import faust

from shared import catalogue as cat
from shared.domain import heartbeats as hb
from shared.domain.alerts import AlertAction
from shared.domain.organisation import Organisation
from shared.kafka.deadlines import deadline_timer
from shared.kafka.faust_app import declare, guarded_agent, table
from shared.kafka.streams import Outbox, decode, key_of, origin_of, send_model
from shared.messages import HeartbeatCheck, HeartbeatPing, NativeAlert
from shared.settings import Settings

SERVICE = "escalation"
INTEGRATION = "heartbeat"


def alert_for(name: str, org: Organisation, change: hb.Missed | hb.Back, now: datetime) -> NativeAlert:
    """The native alert of a missed beat (firing) or of its return (resolved), one dedup key per heartbeat."""
    beat = org.heartbeats[name]
    missing = isinstance(change, hb.Missed)
    since = change.since if missing else change.missing_since
    summary = hb.missing_summary(name, change) if missing else f"heartbeat `{name}` is back"
    return NativeAlert(
        service=beat.service,
        summary=summary,
        status="firing" if missing else "resolved",
        dedup_key=f"heartbeat:{name}",
        source="heartbeat",
        alert_name=f"heartbeat:{name}",
        team=beat.team,
        labels={"alertname": f"heartbeat:{name}", "heartbeat": name},
        annotations={"description": beat.description or f"No ping for longer than {hb.describe_span(beat.timeout)} "
                                                          f"(interval {hb.describe_span(beat.interval)} + grace "
                                                          f"{hb.describe_span(beat.grace)})."},
        starts_at=since,
        # Stable per miss: a redelivered check repeats the same alert.
        alert_id=f"heartbeat:{name}:{'missed' if missing else 'back'}:{since.isoformat()}",
        received_at=now,
        integration=INTEGRATION,
        action=AlertAction.TRIGGER if missing else AlertAction.RESOLVE,
    )


def on_ping(state: hb.BeatState, ping: HeartbeatPing, org: Organisation,
            now: datetime) -> tuple[hb.BeatState, list[NativeAlert]]:
    if ping.name not in org.heartbeats:
        return state, []  # a heartbeat removed from the configuration
    updated, back = hb.on_ping(state, ping.at)
    return updated, [alert_for(ping.name, org, back, now)] if back else []


def on_check(state: hb.BeatState, name: str, org: Organisation, now: datetime) -> tuple[hb.BeatState, list[NativeAlert]]:
    beat = org.heartbeats.get(name)
    if beat is None:
        return state, []
    updated, missed = hb.on_check(state, beat, now)
    return updated, [alert_for(name, org, missed, now)] if missed else []


def install(app: faust.App, settings: Settings, org: Organisation, dead) -> None:
    n = settings.topic_partitions
    pings = declare(app, cat.HEARTBEAT_PINGS, n)
    checks = declare(app, cat.HEARTBEAT_CHECKS, n)
    intake = declare(app, cat.ALERTS_INTAKE, n)
    beats = table(app, "heartbeats", n)

    async def keep_heartbeats(event) -> None:
        """Move a heartbeat's deadline on a ping; report a miss when its deadline check finds it silent."""
        name = key_of(event)
        state = hb.BeatState.model_validate(beats.get(name) or {})
        now = datetime.now(timezone.utc)
        if origin_of(event).topic == cat.HEARTBEAT_CHECKS.name:
            if await decode(event, HeartbeatCheck, dead, SERVICE) is None:
                return
            in_flight.seen(name)
            updated, alerts = on_check(state, name, org, now)
        else:
            ping = await decode(event, HeartbeatPing, dead, SERVICE)
            if ping is None:
                return
            updated, alerts = on_ping(state, ping, org, now)
        outbox = Outbox()
        for alert in alerts:
            await outbox.send(intake, alert.dedup_key or name, alert)
        await outbox.confirm()
        if updated != state:
            beats[name] = updated.model_dump(mode="json")

    def due_of(name: str, value: dict) -> datetime | None:
        beat = org.heartbeats.get(name)
        return hb.due(hb.BeatState.model_validate(value), beat) if beat is not None else None

    in_flight = deadline_timer(app, "nudge_heartbeats", settings.tick_seconds, beats, due_of,
                               lambda name, due: send_model(checks, name, HeartbeatCheck(name=name, due=due)))

    both = app.topic(cat.HEARTBEAT_PINGS.name, cat.HEARTBEAT_CHECKS.name, key_serializer="raw", value_serializer="raw")
    _ = (pings, checks)
    guarded_agent(app, both, keep_heartbeats, dead, SERVICE)
