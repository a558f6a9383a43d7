"""python -m services.web"""
from __future__ import annotations

import logging

import uvicorn

from services.entry import run_main
from shared import log_collapse
from shared.config_loader import load_organisation
from shared.settings import load_settings

from .app import create_app


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s web %(levelname)s %(name)s: %(message)s")
    log_collapse.install()
    # httpx logs every request at INFO: one line per page and per API read is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    org = load_organisation(settings.incident_config)
    app = create_app(settings, org)
    # No access log: URLs are harmless, but a log of every poll is noise.
    uvicorn.run(app, host=settings.web_host, port=settings.web_port, log_level=settings.log_level.lower(),
                access_log=False)


if __name__ == "__main__":
    run_main(main)
