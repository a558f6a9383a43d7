"""Start a Faust service: settings and organisation read once, topics ensured, worker run."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import faust

from shared.catalogue import all_topics
from shared.config_loader import load_organisation
from shared.domain.organisation import Organisation
from shared.kafka.admin import ensure_topics
from shared.settings import Settings, load_settings


def prepare(service: str) -> tuple[Settings, Organisation]:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
    )
    org = load_organisation(settings.incident_config)
    asyncio.run(ensure_topics(settings.kafka_bootstrap, all_topics(org), settings.topic_partitions))
    return settings, org


def run_faust_service(service: str, build: Callable[[Settings, Organisation], faust.App]) -> None:
    settings, org = prepare(service)
    app = build(settings, org)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
