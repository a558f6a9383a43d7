"""How a service process ends when its configuration is wrong: the message, and exit 78.

78 (EX_CONFIG) tells the supervisor not to restart: a bad file or environment does
not get better by trying again. Every other failure exits otherwise and is restarted.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from typing import Callable

from shared import log_collapse
from shared.catalogue import all_topics
from shared.config_loader import ConfigError, load_organisation
from shared.domain.organisation import Organisation
from shared.kafka.admin import TopologyError, ensure_topics, replication
from shared.kafka.liveness import CONFIG_ERROR
from shared.settings import Settings, SettingsError, load_settings


def run_main(main: Callable[[], None]) -> None:
    try:
        main()
    except (ConfigError, SettingsError, TopologyError) as exc:
        print(str(exc), file=sys.stderr, flush=True)
        sys.exit(CONFIG_ERROR)


def prepare(service: str) -> tuple[Settings, Organisation]:
    """What a service that is not a Faust app does first: settings and organisation read once,
    logging set, and every topic there (a service started alone, as in docker compose)."""
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
    log_collapse.install()
    org = load_organisation(settings.incident_config)
    try:
        asyncio.run(ensure_topics(settings.kafka_bootstrap, all_topics(org), settings.topic_partitions,
                                  **replication(settings)))
    except TimeoutError as exc:
        raise SystemExit(f"{service}: {exc}") from None
    return settings, org
