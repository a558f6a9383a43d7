"""Start a Faust service: settings and organisation read once, topics ensured, worker run."""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable

import faust

from shared import log_collapse
from shared.catalogue import all_topics
from shared.config_loader import load_organisation
from shared.domain.organisation import Organisation
from shared.kafka import health
from shared.kafka.admin import ensure_topics, replication
from shared.settings import Settings, load_settings

from .entry import run_main
from .topology import faust_internal_topics


def run_faust_service(service: str, build: Callable[[Settings, Organisation], faust.App]) -> None:
    run_main(lambda: _run(service, build))


def _run(service: str, build: Callable[[Settings, Organisation], faust.App]) -> None:
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"
    )
    log_collapse.install()
    org = load_organisation(settings.incident_config)
    # WEB_PORT and WEB_HOST are the web console's; Faust would take them for its own web
    # server over the port it is given (FAUST_WEB_PORT_BASE), so they are not Faust's to see.
    for name in ("WEB_PORT", "WEB_HOST", "WEB_BIND"):
        os.environ.pop(name, None)
    app = build(settings, org)
    health.install(app, service, settings)
    # Created up front, Faust's own topics included (make up and the harness have usually
    # done it already; this covers a service started alone, as in docker compose).
    try:
        asyncio.run(ensure_topics(settings.kafka_bootstrap, [*all_topics(org), *faust_internal_topics(app)],
                                  settings.topic_partitions, **replication(settings)))
    except TimeoutError as exc:
        raise SystemExit(f"{service}: {exc}") from None
    worker = _Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


class _Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        # The worker replaces the root logger's handlers when it starts: the new ones collapse
        # repeated lines too (aiokafka's retries while the broker is away).
        log_collapse.install(logger)
