"""Metrics: folds incident events into durable aggregates (Faust tables) and serves /metrics."""
from __future__ import annotations

import logging
from datetime import datetime

import faust
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from shared import catalogue as cat
from shared.domain import metrics as defs
from shared.domain.organisation import Organisation
from shared.domain.visibility import visible
from shared.background import essential
from shared.kafka.batches import batch_agent, write
from shared.kafka.changelog_mirror import ChangelogMirror
from shared.kafka.faust_app import create_app, declare, table
from shared.kafka.streams import origin_of
from shared.messages import AuditEvent, AuditHead, CommunicationRecord, HeartbeatPing
from shared.settings import Settings

from . import handlers
from .exporter import IncidentCollector

log = logging.getLogger("metrics")
SERVICE = "metrics"
_SOURCES = (cat.INCIDENT_AUDIT, cat.COMMUNICATIONS, cat.ALERTS_INTAKE, cat.DEAD_LETTER, cat.HEARTBEAT_PINGS)


def build(settings: Settings, org: Organisation) -> faust.App:
    app = create_app(SERVICE, settings, web_port=settings.metrics_port, process_metrics=False)
    app.conf.web_host = app.conf.web_bind = settings.metrics_host
    n = settings.topic_partitions
    for spec in _SOURCES:
        declare(app, spec, n)
    dead = declare(app, cat.DEAD_LETTER, n)
    facts = table(app, "incident_facts", n)
    notification_log = table(app, "notification_log", n)
    partition_counts = table(app, "partition_counts", n)
    last_pings = table(app, "heartbeat_last_pings", n)

    async def fold(events) -> None:
        """Count each message once: into its incident's facts, its notification log, or its
        partition's counts; one table write per key per batch (a storm's alerts.intake
        partition is one key: one write for hundreds of alerts)."""
        pending: dict[tuple, tuple] = {}  # (table, key) -> (last event, new value)

        def get(store, key: str):
            found = pending.get((store, key))
            return found[1] if found is not None else store.get(key)

        def put(store, event, key: str, value: dict | None) -> None:
            if value is not None:
                pending[(store, key)] = (event, value)

        for event in events:
            origin = origin_of(event)
            try:
                if origin.topic == cat.INCIDENT_AUDIT.name:
                    head = AuditHead.model_validate_json(event.value)
                    previous = get(facts, head.incident_id)
                    if head.only_an_alert and previous is not None:
                        put(facts, event, head.incident_id, handlers.fold_alert(previous, head))
                        continue
                    message = AuditEvent.model_validate_json(event.value)
                    put(facts, event, message.incident_id, handlers.fold_audit(previous, message))
                elif origin.topic == cat.HEARTBEAT_PINGS.name:
                    ping = HeartbeatPing.model_validate_json(event.value)
                    put(last_pings, event, ping.name, handlers.fold_ping(get(last_pings, ping.name), ping))
                elif origin.topic == cat.COMMUNICATIONS.name:
                    record = CommunicationRecord.model_validate_json(event.value)
                    key = record.incident_id
                    put(notification_log, event, key,
                        handlers.fold_communication(get(notification_log, key), record))
                else:
                    key = origin.stream
                    put(partition_counts, event, key,
                        handlers.fold_positioned(get(partition_counts, key), origin, event.value, SERVICE))
            except ValidationError as exc:
                # The topic's owner dead-letters its poison; a second dead letter from here would be
                # counted as another rejection (and one about a dead letter would loop forever).
                log.warning("not counted %s@%s: %s", origin.stream, origin.offset, str(exc).splitlines()[0])
        for (store, key), (event, value) in pending.items():
            write(store, event, key, value)

    sources = app.topic(*(spec.name for spec in _SOURCES), key_serializer="raw", value_serializer="raw")
    batch_agent(app, sources, fold, dead, SERVICE)

    # What /metrics reads: the tables themselves when this is the only worker; with several,
    # a mirror of every partition, since this worker's tables hold only the ones it owns and
    # partial means cannot be added (shared/kafka/changelog_mirror.py).
    tables = {"incident_facts": facts, "notification_log": notification_log, "partition_counts": partition_counts,
              "heartbeat_last_pings": last_pings}
    mirror = None
    if settings.worker:
        mirror = ChangelogMirror(settings.kafka_bootstrap,
                                 {name: t.changelog_topic.get_topic_name() for name, t in tables.items()}, n,
                                 client_id=f"{settings.app_prefix}-{SERVICE}-{settings.worker}-mirror")
        tables = mirror.tables

        @app.task
        async def mirror_tables() -> None:
            await essential(mirror.run(), "table mirror")
    facts_view, log_view = tables["incident_facts"], tables["notification_log"]
    counts_view, pings_view = tables["partition_counts"], tables["heartbeat_last_pings"]

    def registry_of(include_restricted: bool) -> CollectorRegistry:
        """Every incident's numbers (what Prometheus scrapes), or only those of incidents anyone may
        know of (what the console shows a role that may not read restricted ones)."""

        def incidents() -> list[tuple[str, dict]]:
            return [(key, v) for key, v in list(facts_view.items())
                    if v and visible(v.get("restricted", False), include_restricted)]

        def logs() -> list[dict]:
            hidden = set() if include_restricted else {key for key, v in list(facts_view.items())
                                                       if v and v.get("restricted", False)}
            return [v for key, v in list(log_view.items()) if v and key not in hidden]

        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            IncidentCollector(
                org,
                facts=lambda: [defs.IncidentFacts.model_validate(v) for _, v in incidents()],
                counts=lambda: [
                    *(v.get("counts", {}) for _, v in incidents()),
                    *handlers.notification_counts(logs()),
                    *(v.get("counts", {}) for v in list(counts_view.values()) if v),
                ],
                pings=lambda: {name: datetime.fromisoformat(v["at"]) for name, v in list(pings_view.items()) if v},
            )
        )
        return registry

    registries = {True: registry_of(True), False: registry_of(False)}

    @app.page("/metrics")
    async def metrics(web, request):
        if mirror is not None and not mirror.caught_up.is_set():
            return web.text("the table mirror is catching up with the changelogs", status=503)
        if mirror is None and (app.rebalancing or app.in_recovery or not app.tables.recovery.completed.is_set()):
            # Half-recovered tables would export too-small counters (a false reset) and wrong means;
            # a failed scrape is honest, and the ServiceDown rule's `for` rides over it.
            return web.text("tables are recovering", status=503)
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 by definition.
        # ?restricted=exclude: the numbers without restricted incidents (the console, for roles that
        # may not know of them); Prometheus scrapes everything, with restricted services masked.
        include_restricted = request.query.get("restricted") != "exclude"
        return web.bytes(generate_latest(registries[include_restricted]), content_type="text/plain; version=0.0.4")


    return app
