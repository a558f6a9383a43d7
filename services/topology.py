"""Every topic the platform uses, Faust's own included, so all exist before any service starts.

Faust creates its changelogs and its assignor's leader topic itself, once the worker
is already running; a fresh broker then had no metadata for them yet and the first
offset commit hung (faust #400). The names follow from the app ids (APP_PREFIX) and
the tables each service declares, so the apps are built here (no I/O) to read them.

``python -m services.topology`` creates them all; make up, make run and the test
harness run it before they start a service.
"""
from __future__ import annotations

import asyncio
import logging

import faust

from shared.catalogue import TopicSpec, all_topics
from shared.domain.organisation import Organisation
from shared.messages import DeadLetter
from shared.settings import Settings

LEADER_TOPIC_SUFFIX = "-__assignor-__leader"


def faust_internal_topics(app: faust.App) -> list[TopicSpec]:
    """The app's table changelogs (compacted, co-partitioned) and its assignor's leader topic."""
    specs = [
        TopicSpec(
            table.changelog_topic.get_topic_name(), "table key", DeadLetter, (app.conf.id,), (app.conf.id,),
            f"changelog of table {table.name}", compacted=True,
        )
        for table in app.tables.values()
    ]
    specs.append(
        TopicSpec(
            f"{app.conf.id}{LEADER_TOPIC_SUFFIX}", "none", DeadLetter, (app.conf.id,), (app.conf.id,),
            "Faust's assignor leader election", partitions=1,
        )
    )
    return specs


def faust_builders():
    from services.escalation.app import build as escalation
    from services.metrics.app import build as metrics
    from services.notification.app import build as notification
    from services.triage.app import build as triage

    return {"triage": triage, "escalation": escalation, "notification": notification, "metrics": metrics}


def platform_topics(settings: Settings, org: Organisation) -> list[TopicSpec]:
    specs = list(all_topics(org))
    for build in faust_builders().values():
        specs.extend(faust_internal_topics(build(settings, org)))
    return specs


def main() -> None:
    from shared.config_loader import load_organisation
    from shared.kafka.admin import ensure_topics, replication
    from shared.settings import load_settings

    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s topology %(levelname)s %(name)s: %(message)s")
    org = load_organisation(settings.incident_config)
    specs = platform_topics(settings, org)
    asyncio.run(ensure_topics(settings.kafka_bootstrap, specs, settings.topic_partitions, **replication(settings)))
    print(f"topology: {len(specs)} topics ready on {settings.kafka_bootstrap} (every partition has a leader)")


if __name__ == "__main__":
    main()
