"""python -m services.recorder"""
from __future__ import annotations

import asyncio
import logging

import uvloop

from services.entry import run_main
from shared.catalogue import all_topics
from shared.config_loader import load_organisation
from shared.kafka.admin import ensure_topics
from shared.settings import load_settings

from .app import serve


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s recorder %(levelname)s %(name)s: %(message)s")
    org = load_organisation(settings.incident_config)
    try:
        asyncio.run(ensure_topics(settings.kafka_bootstrap, all_topics(org), settings.topic_partitions))
    except TimeoutError as exc:
        raise SystemExit(f"recorder: {exc}") from None
    # uvloop: the C event loop, as ingestion uses; the recorder parses and writes thousands of rows a second.
    uvloop.run(serve(settings))


if __name__ == "__main__":
    run_main(main)
