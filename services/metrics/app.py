"""Metrics: folds incident events into durable aggregates (Faust tables) and serves /metrics."""
from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry, generate_latest

from shared import catalogue as cat
from shared.domain import metrics as defs
from shared.domain.incident import Incident
from shared.domain.organisation import Organisation
from shared.kafka.faust_app import create_app, declare, table
from shared.kafka.streams import process, key_of, origin_of
from shared.messages import AuditEvent, CommunicationRecord, DeadLetter, NativeAlert
from shared.settings import Settings

from .exporter import IncidentCollector, counter_key

log = logging.getLogger("metrics")
SERVICE = "metrics"
_SOURCES = (cat.INCIDENT_AUDIT, cat.COMMUNICATIONS, cat.ALERTS_INTAKE, cat.DEAD_LETTER)
_ALERT_PATH = (cat.ALERTS_INTAKE.name, cat.TRIAGE_ALERTS.name, cat.TRIAGE_CORRELATION.name)


def build(settings: Settings, org: Organisation) -> faust.App:
    app = create_app(SERVICE, settings, web_port=settings.metrics_port)
    app.conf.web_host = settings.metrics_host
    n = settings.topic_partitions
    for spec in _SOURCES:
        declare(app, spec, n)
    dead = declare(app, cat.DEAD_LETTER, n)
    facts = table(app, "incident_facts", n)
    counters = table(app, "counters", n)
    # Per source partition: the highest offset already counted (redelivery counts nothing twice).
    positions = table(app, "positions", n)

    def bump(name: str, labels, stream: str, amount: float = 1.0) -> None:
        key = counter_key(name, labels, stream)
        counters[key] = (counters.get(key) or 0.0) + amount

    @app.agent(app.topic(*(spec.name for spec in _SOURCES), key_serializer="raw", value_serializer="raw"),
               concurrency=1)
    async def fold(stream):
        async for event in stream.events():
            await process(event, _fold, dead, SERVICE)

    async def _fold(event) -> None:
        origin = origin_of(event)
        done = positions.get(origin.stream)
        if done is not None and done >= origin.offset:
            return
        try:
            _count(event, origin, bump, facts)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            # Poison is dead-lettered by the service that owns the topic; here it is only not counted.
            log.warning("not counted %s: %s", origin.stream, str(exc).splitlines()[0])
        positions[origin.stream] = origin.offset

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        IncidentCollector(
            org,
            facts=lambda: (defs.IncidentFacts.model_validate(v) for v in list(facts.values()) if v),
            counters=lambda: ((k, v) for k, v in list(counters.items()) if v is not None),
        )
    )

    @app.page("/metrics")
    async def metrics(web, request):
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 by definition.
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    return app


def _count(event, origin, bump, facts) -> None:
    topic, stream = origin.topic, origin.stream
    if topic == cat.INCIDENT_AUDIT.name:
        message = AuditEvent.model_validate_json(event.value)
        incident = Incident.model_validate(message.incident)
        key = key_of(event)
        previous = facts.get(key)
        before = defs.IncidentFacts.model_validate(previous) if previous else None
        if before is not None and before.last_version >= message.version:
            return
        facts[key] = defs.fold(before, incident).model_dump(mode="json")
        for name, labels in defs.counter_increments(message.change, incident):
            bump(name, labels, stream)
    elif topic == cat.COMMUNICATIONS.name:
        record = CommunicationRecord.model_validate_json(event.value)
        channel = record.channel.split(":", 1)[0]
        if record.status == "sent":
            bump("notifications_sent_total", (("team", record.team), ("channel", channel)), stream)
        elif record.status in ("failed", "dead_lettered"):
            bump("notifications_failed_total", (("team", record.team), ("channel", channel)), stream)
    elif topic == cat.ALERTS_INTAKE.name:
        try:
            alert = NativeAlert.model_validate_json(event.value)
            integration = alert.integration or "kafka"
        except ValueError:
            integration = "unparseable"
        bump("alerts_received_total", (("integration", integration),), stream)
    elif topic == cat.DEAD_LETTER.name:
        letter = DeadLetter.model_validate_json(event.value)
        if letter.source_topic in _ALERT_PATH:
            reason = letter.reason.split(":", 1)[0]
            bump("alerts_rejected_total", (("reason", reason),), stream)
