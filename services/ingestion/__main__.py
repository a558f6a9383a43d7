"""python -m services.ingestion"""
from __future__ import annotations

import uvicorn

from services.entry import prepare, run_main

from .app import create_server


def main() -> None:
    settings, org = prepare("ingestion")
    app = create_server(settings, org)
    # uvloop and httptools: the C event loop and HTTP parser cut intake latency under load.
    # No proxy-header rewriting (it cost a middleware call per request): the client's address
    # that the failed-authentication throttle keys on (edge.py) is the TCP peer, so behind a
    # reverse proxy it is the proxy's (README, troubleshooting).
    uvicorn.run(app, host=settings.ingestion_host, port=settings.ingestion_port, log_level=settings.log_level.lower(),
                access_log=False, loop="uvloop", http="httptools", proxy_headers=False)


if __name__ == "__main__":
    run_main(main)
