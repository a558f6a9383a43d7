"""Triage: the single writer of incident state (composition root of the Faust app)."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone

import faust
from pydantic import TypeAdapter

from shared import catalogue as cat
from shared.db.ids import allocate_incident_id
from shared.db.pool import create_pool
from shared.domain.alerts import fingerprint
from shared.domain.commands import OpenIncident
from shared.domain.oncall import with_overrides
from shared.domain.organisation import Organisation
from shared.kafka.faust_app import Lazy, create_app, declare, guarded_agent, table
from shared.kafka.streams import Outbox, decode, key_of, origin_of, send_model
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

from .handlers import (
    Attach,
    CorrelationRecord,
    Drop,
    FingerprintRecord,
    IncidentRecord,
    OpenNew,
    apply_command,
    apply_link,
    attach_command,
    correlation_for,
    open_command,
    remember,
    route_alert,
    seen,
)

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
    incidents = table(app, "incidents", n)
    correlation_message = TypeAdapter(CorrelationMessage)
    pool = Lazy(lambda: create_pool(settings.database_url, max_size=4), lambda p: p.close())
    pool.close_on_shutdown(app)
    # Runtime overrides decide a new incident's commander (read only for an open: the hot path never waits on them).
    overrides = whole_topic(app, settings, cat.ONCALL_OVERRIDES, SERVICE)
    org_with_overrides = Derived(overrides, lambda items: with_overrides(org, items))

    async def normalise(event) -> None:
        """Native alerts from any producer -> normalised and keyed by fingerprint."""
        native = await decode(event, NativeAlert, dead, SERVICE)
        if native is None:
            return
        origin = origin_of(event)
        alert = native.to_alert(alert_id=f"{origin.stream}:{origin.offset}", received_at=utcnow())
        key = fingerprint(alert, org)
        # Alerts of one fingerprint from one intake partition stay in order on every
        # later hop, so (partition, fingerprint) is where duplicates are recognised.
        message = FingerprintedAlert(alert=alert, fingerprint=key, origin=origin.model_copy(update={"lane": key}))
        await send_model(by_fingerprint, message.fingerprint, message)

    async def route(event) -> None:
        """Remember where each fingerprint correlates; send the alert on, keyed by correlation key."""
        message = await decode(event, FingerprintedAlert, dead, SERVICE)
        if message is None:
            return
        key = key_of(event)
        stored = fingerprints.get(key)
        record = FingerprintRecord.model_validate(stored) if stored else None
        ckey, alert = correlation_for(record, message.alert, org)
        forward = CorrelateAlert(alert=alert, fingerprint=message.fingerprint, correlation_key=ckey, origin=message.origin)
        outbox = Outbox()
        await outbox.send(correlation, ckey, forward)
        await outbox.confirm()
        if record is None or record.correlation_key != ckey:
            fingerprints[key] = FingerprintRecord(
                correlation_key=ckey, service=alert.service, alert_name=alert.name
            ).model_dump(mode="json")

    async def correlate(event) -> None:
        """One correlation key at a time: attach to its incident, reopen it, or open a new one."""
        message = await decode(event, correlation_message, dead, SERVICE)
        if message is None:
            return
        key = key_of(event)
        record = CorrelationRecord.model_validate(correlations.get(key) or {})
        if isinstance(message, IncidentLink):
            updated = apply_link(record, message)
            if updated is not record:
                correlations[key] = updated.model_dump(mode="json")
            return
        if seen(record.positions, message.origin):
            return  # the normaliser sent this alert again after a restart
        route = route_alert(record, message, org, utcnow())
        positions = remember(record.positions, message.origin)
        if isinstance(route, Drop):
            log.info("alert %s dropped: %s", message.alert.alert_id, route.reason)
            correlations[key] = record.model_copy(update={"positions": positions}).model_dump(mode="json")
            return
        if isinstance(route, OpenNew):
            # Hashed: the stream names a fingerprint, which is the source's text and may hold
            # anything (PostgreSQL text refuses NUL).
            opening = hashlib.sha256(f"{message.origin.stream}:{message.origin.offset}".encode()).hexdigest()
            incident_id = await allocate_incident_id(await pool.get(), opening, message.alert.received_at.date())
            envelope = open_command(message, incident_id, route.previous_incident_id)
            record = CorrelationRecord(incident_id=incident_id, status=None, version=0, positions=positions)
        else:
            assert isinstance(route, Attach)
            envelope = attach_command(message, route.incident_id)
            record = record.model_copy(update={"positions": positions})
        outbox = Outbox()
        await outbox.send(commands, envelope.incident_id, envelope)
        await outbox.confirm()
        correlations[key] = record.model_dump(mode="json")

    async def apply(event) -> None:
        """Apply each command through the lifecycle and publish its audit events."""
        envelope = await decode(event, CommandEnvelope, dead, SERVICE)
        if envelope is None:
            return
        key = key_of(event)
        if key != envelope.incident_id:
            log.warning("command keyed %r names incident %r; using the key's record", key, envelope.incident_id)
        record = IncidentRecord.model_validate(incidents.get(key) or {})
        current = await org_with_overrides.get() if isinstance(envelope.command, OpenIncident) else org
        outcome = apply_command(record, envelope, origin_of(event).offset, current, utcnow())
        if outcome.duplicate:
            if outcome.record is not record:
                incidents[key] = outcome.record.model_dump(mode="json")
            return
        outbox = Outbox()
        for audit_event in outcome.events:
            await outbox.send(audit, key, audit_event)
        if outcome.result is not None:
            await outbox.send(results, key, outcome.result)
        if outcome.link is not None:
            await outbox.send(correlation, outcome.link.correlation_key, outcome.link)
        await outbox.confirm()
        incidents[key] = outcome.record.model_dump(mode="json")


    guarded_agent(app, intake, normalise, dead, SERVICE)
    guarded_agent(app, by_fingerprint, route, dead, SERVICE)
    guarded_agent(app, correlation, correlate, dead, SERVICE)
    guarded_agent(app, commands, apply, dead, SERVICE)
    return app

