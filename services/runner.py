"""Start a Faust service: settings and organisation read once, topics ensured, worker run."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable

import faust

from shared.catalogue import TopicSpec, all_topics
from shared.config_loader import load_organisation
from shared.domain.organisation import Organisation
from shared.kafka.admin import ensure_topics
from shared.messages import DeadLetter
from shared.settings import Settings, load_settings


def changelog_specs(app: faust.App) -> list[TopicSpec]:
    """The tables' changelog topics, so they exist (compacted, co-partitioned) before any event."""
    return [
        TopicSpec(
            table.changelog_topic.get_topic_name(), "table key", DeadLetter, (app.conf.id,), (app.conf.id,),
            f"changelog of table {table.name}", compacted=True,
        )
        for table in app.tables.values()
    ]


def run_faust_service(service: str, build: Callable[[Settings, Organisation], faust.App]) -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
    )
    org = load_organisation(settings.incident_config)
    # WEB_PORT and WEB_HOST are the web console's; Faust would take them for its own web
    # server over the port it is given (FAUST_WEB_PORT_BASE), so they are not Faust's to see.
    for name in ("WEB_PORT", "WEB_HOST", "WEB_BIND"):
        os.environ.pop(name, None)
    app = build(settings, org)
    # Created up front: Faust would create changelogs itself, but an event processed
    # before their metadata arrives fails with PartitionsMismatch.
    asyncio.run(ensure_topics(settings.kafka_bootstrap, [*all_topics(org), *changelog_specs(app)],
                              settings.topic_partitions))
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
