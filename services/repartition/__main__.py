"""python -m services.repartition export FILE | replay FILE (the settings are the services')."""
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from shared.config_loader import load_organisation
from shared.settings import load_settings

from .checks import Refused
from .export import export
from .replay import replay


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("export", "replay"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    command, path = argv[0], Path(argv[1])
    settings = load_settings()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s repartition %(levelname)s %(name)s: %(message)s")
    org = load_organisation(settings.incident_config)
    try:
        if command == "export":
            done = asyncio.run(export(settings, org, path))
            tables = ", ".join(f"{table} {len(keys)}" for table, keys in sorted(done.tables.items()))
            topics = ", ".join(f"{topic} {len(keys)}" for topic, keys in sorted(done.topics.items()))
            print(f"exported {done.records()} records from {done.source_partitions} partitions to {path}"
                  f" (keys: {tables}; {topics})")
        else:
            replayed = asyncio.run(replay(settings, org, path))
            print(f"replayed {replayed.records} records from {replayed.source_partitions} onto"
                  f" {replayed.partitions} partitions; {replayed.openings_set_aside} incident id allocations set"
                  f" aside in PostgreSQL")
    except Refused as exc:
        print(f"repartition: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
