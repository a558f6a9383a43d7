"""Triage: the single writer of incident state (composition root of the Faust app).

Three batched agents (shared/kafka/batches.py):
- ``correlate`` reads the intake topic, keyed by correlation key at the edge, and
  ``triage.correlation`` (alerts sent on, and incident news): it folds each key's
  alerts of a batch into one command per incident (folding.py).
- ``route`` reads ``triage.alerts``, keyed by fingerprint: alerts whose follow-ups may
  name only their dedup key find the correlation key their trigger had.
- ``apply`` reads ``incident.commands`` and applies them through the lifecycle.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

import faust
from pydantic import TypeAdapter

from shared import catalogue as cat
from shared.db.ids import allocate_incident_id
from shared.db.pool import create_pool
from shared.domain.alerts import correlation_key, fingerprint, needs_lookup
from shared.domain.commands import OpenIncident
from shared.domain.oncall import with_overrides
from shared.domain.organisation import Organisation
from shared.kafka.batches import batch_agent, write
from shared.kafka.faust_app import Lazy, create_app, declare, table
from shared.kafka.partitioning import partition_of
from shared.kafka.streams import Outbox, decode, key_of, origin_of, written_at
from shared.kafka.view import Derived, whole_topic
from shared.messages import (
    CommandEnvelope,
    CorrelateAlert,
    CorrelationMessage,
    FingerprintedAlert,
    IncidentLink,
    NativeAlert,
)
from shared.settings import Settings

from .folding import FingerprintState, IncidentFold, state_key
from .handlers import (
    Attach,
    CorrelationRecord,
    Drop,
    FingerprintRecord,
    IncidentRecord,
    OpenNew,
    applied_at,
    apply_command,
    apply_link,
    correlation_for,
    open_command,
    remember,
    route_alert,
    seen,
)

# The correlator folds what one batch holds for each correlation key into one command and
# one audit event. A storm backs up in front of it, so under load a batch fills to
# CORRELATE_BATCH and folds thousands of repeats; when traffic is thin it waits at most
# CORRELATE_WITHIN, which is all the latency it adds to a page.
CORRELATE_BATCH = 5000
CORRELATE_WITHIN = 0.2

log = logging.getLogger("triage")
SERVICE = "triage"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def build(settings: Settings, org: Organisation) -> faust.App:
    app = create_app(SERVICE, settings)
    n = settings.topic_partitions
    intake = declare(app, cat.ALERTS_INTAKE, n)
    by_fingerprint = declare(app, cat.TRIAGE_ALERTS, n)
    correlation = declare(app, cat.TRIAGE_CORRELATION, n)
    commands = declare(app, cat.INCIDENT_COMMANDS, n)
    audit = declare(app, cat.INCIDENT_AUDIT, n)
    results = declare(app, cat.COMMAND_RESULTS, n)
    dead = declare(app, cat.DEAD_LETTER, n)
    fingerprints = table(app, "fingerprints", n)
    correlations = table(app, "correlations", n)
    alert_states = table(app, "alert_states", n)
    incidents = table(app, "incidents", n)
    correlation_message = TypeAdapter(CorrelationMessage)
    pool = Lazy(lambda: create_pool(settings.database_url, max_size=4), lambda p: p.close())
    pool.close_on_shutdown(app)
    # Runtime overrides decide a new incident's commander (read only for an open: the hot path never waits on them).
    overrides = whole_topic(app, settings, cat.ONCALL_OVERRIDES, SERVICE)
    org_with_overrides = Derived(overrides, lambda items: with_overrides(org, items))

    async def admitted_alert(event, outbox: Outbox) -> tuple[str, CorrelateAlert] | None:
        """An alert from the intake topic, to fold here; or sent on (None) to where its key is."""
        native = await decode(event, NativeAlert, dead, SERVICE)
        if native is None:
            return None
        origin = origin_of(event)
        alert = native.to_alert(alert_id=f"{origin.stream}:{origin.offset}", received_at=utcnow())
        fp = fingerprint(alert, org)
        if needs_lookup(alert):
            await outbox.send(by_fingerprint, fp, FingerprintedAlert(alert=alert, fingerprint=fp, origin=origin))
            return None
        ckey = correlation_key(alert, org)
        message = CorrelateAlert(alert=alert, fingerprint=fp, correlation_key=ckey, origin=origin)
        if partition_of(ckey, n) != origin.partition:
            # Written onto the intake topic by another producer, under another key.
            await outbox.send(correlation, ckey, message)
            return None
        return ckey, message

    async def fold_key(ckey: str, items: list, outbox: Outbox, now: datetime) -> tuple[CorrelationRecord, dict]:
        """One correlation key's alerts and news of this batch, in order."""
        record = CorrelationRecord.model_validate(correlations.get(ckey) or {})
        states: dict[str, FingerprintState] = {}
        fold: IncidentFold | None = None

        def stored(fp: str) -> FingerprintState | None:
            key = state_key(ckey, fp)
            if key in states:
                return states[key]
            value = alert_states.get(key)
            return FingerprintState.model_validate(value) if value else None

        async def flush() -> None:
            nonlocal record
            if fold is None:
                return
            envelope = fold.command()
            if envelope is not None:
                await outbox.send(commands, envelope.incident_id, envelope)
            record = fold.recorded(record)
            states.update({state_key(ckey, fp): state for fp, state in fold.states.items()})

        for _, message in items:
            if isinstance(message, IncidentLink):
                record = apply_link(record, message)
                continue
            if seen(record.positions, message.origin):
                continue  # sent again after a restart: already folded
            record = record.model_copy(update={"positions": remember(record.positions, message.origin)})
            route = route_alert(record, message, org, now)
            if isinstance(route, Drop):
                log.info("alert %s dropped: %s", message.alert.alert_id, route.reason)
            elif isinstance(route, OpenNew):
                await flush()
                # Hashed: the stream names a source's text, which may hold anything.
                opening = hashlib.sha256(f"{message.origin.stream}:{message.origin.offset}".encode()).hexdigest()
                incident_id = await allocate_incident_id(await pool.get(), opening, message.alert.received_at.date())
                await outbox.send(commands, incident_id, open_command(message, incident_id, route.previous_incident_id))
                record = CorrelationRecord(incident_id=incident_id, positions=record.positions)
                fold = IncidentFold(incident_id=incident_id, firing=0, distinct=0, max_alert_age=org.max_alert_age)
                fold.opening(message)
            else:
                assert isinstance(route, Attach)
                if fold is None or fold.incident_id != route.incident_id:
                    await flush()
                    fold = IncidentFold(incident_id=route.incident_id, firing=record.firing, distinct=record.distinct,
                                        max_alert_age=org.max_alert_age)
                fold.add(message, stored(message.fingerprint))
        await flush()
        return record, states

    async def correlate(events) -> None:
        """Alerts and incident news by correlation key: attach, reopen, or open a new incident."""
        outbox = Outbox()
        groups: dict[str, list] = {}
        for event in events:
            if event.message.topic == cat.ALERTS_INTAKE.name:
                found = await admitted_alert(event, outbox)
                if found is None:
                    continue
                ckey, message = found
            else:
                message = await decode(event, correlation_message, dead, SERVICE)
                if message is None:
                    continue
                ckey = key_of(event)
            groups.setdefault(ckey, []).append((event, message))
        now = utcnow()
        folded = [(ckey, items[-1][0], await fold_key(ckey, items, outbox, now)) for ckey, items in groups.items()]
        await outbox.confirm()
        for ckey, last_event, (record, states) in folded:
            write(correlations, last_event, ckey, record.model_dump(mode="json"))
            for key, state in states.items():
                write(alert_states, last_event, key, state.model_dump(mode="json"))

    async def route(events) -> None:
        """Remember where each fingerprint correlates; send its alerts on, keyed by correlation key."""
        outbox = Outbox()
        pending: dict[str, tuple] = {}
        for event in events:
            message = await decode(event, FingerprintedAlert, dead, SERVICE)
            if message is None:
                continue
            key = key_of(event)
            record = pending[key][1] if key in pending else None
            if record is None and (stored := fingerprints.get(key)):
                record = FingerprintRecord.model_validate(stored)
            if record is not None and seen(record.positions, message.origin):
                continue  # forwarded again after a restart: sent on already
            ckey, alert = correlation_for(record, message.alert, org)
            # This hop's own position: alerts of one fingerprint partition stay in order.
            await outbox.send(correlation, ckey, CorrelateAlert(alert=alert, fingerprint=message.fingerprint,
                                                                correlation_key=ckey, origin=origin_of(event)))
            followed = record is not None and record.correlation_key == ckey
            pending[key] = (event, FingerprintRecord(
                correlation_key=ckey,
                service=record.service if followed else alert.service,
                alert_name=record.alert_name if followed else alert.name,
                positions=remember(record.positions if record else {}, message.origin),
            ))
        await outbox.confirm()
        for key, (event, record) in pending.items():
            write(fingerprints, event, key, record.model_dump(mode="json"))

    async def apply(events) -> None:
        """Apply each command through the lifecycle and publish its audit events."""
        outbox = Outbox()
        pending: dict[str, tuple] = {}
        for event in events:
            envelope = await decode(event, CommandEnvelope, dead, SERVICE)
            if envelope is None:
                continue
            key = key_of(event)
            if key != envelope.incident_id:
                log.warning("command keyed %r names incident %r; using the key's record", key, envelope.incident_id)
            record = pending[key][1] if key in pending else IncidentRecord.model_validate(incidents.get(key) or {})
            current = await org_with_overrides.get() if isinstance(envelope.command, OpenIncident) else org
            # The message's time, not the clock's: a redelivered command makes the same events.
            now = applied_at(record, written_at(event))
            outcome = apply_command(record, envelope, origin_of(event).offset, current, now)
            if outcome.record is not record:
                pending[key] = (event, outcome.record)
            for audit_event in outcome.events:
                await outbox.send(audit, key, audit_event)
            if outcome.result is not None:
                await outbox.send(results, key, outcome.result)
            if outcome.link is not None:
                await outbox.send(correlation, outcome.link.correlation_key, outcome.link)
        await outbox.confirm()
        for key, (event, record) in pending.items():
            write(incidents, event, key, record.model_dump(mode="json"))

    batch_agent(app, app.topic(cat.ALERTS_INTAKE.name, cat.TRIAGE_CORRELATION.name, key_serializer="raw",
                               value_serializer="raw"), correlate, dead, SERVICE,
                size=CORRELATE_BATCH, within=CORRELATE_WITHIN)
    batch_agent(app, by_fingerprint, route, dead, SERVICE)
    batch_agent(app, commands, apply, dead, SERVICE)
    _ = (intake, correlation)  # declared so Faust knows them (created with their partitions up front)
    return app
