"""python -m services.recorder"""
from __future__ import annotations

import uvloop

from services.entry import prepare, run_main

from .app import serve


def main() -> None:
    settings, _ = prepare("recorder")  # the organisation is read to validate it and to know the team topics
    # uvloop: the C event loop, as ingestion uses; the recorder parses and writes thousands of rows a second.
    uvloop.run(serve(settings))


if __name__ == "__main__":
    run_main(main)
