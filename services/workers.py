"""Several workers per service: each worker's name, ports, data directory and environment.

``WORKERS=1`` (the default) is today's layout: one process per service, named after it,
on the configured ports. With ``WORKERS=N`` every shared service runs N processes named
``triage-1`` .. ``triage-N``: worker k listens on each of its service's ports plus
``WORKER_PORT_STEP`` x (k - 1) (1000 by default, so worker 1 keeps the configured ports),
keeps its Faust data under ``DATA_DIR/<service>-<k>``, and joins the same consumer group
as its siblings (same ``APP_PREFIX``), so Kafka splits the partitions between them.

The metrics service stays one worker: its windowed gauges (means, rates) are computed from
its whole table at scrape time and a worker holding half the partitions would export half
the truth (see the README, "Growing past one machine"). The web console stays one too.

    python -m services.workers names WORKERS       the process names, one a line
    python -m services.workers env SERVICE WORKER  the environment a worker adds (KEY=VALUE lines)
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

from shared.settings import Settings

# Shared between workers through Kafka's consumer groups (ingestion is stateless).
SHARED = ("ingestion", "recorder", "triage", "escalation", "notification")
# Always one process: metrics (gauges from its whole table) and the web console.
SINGLE = ("metrics", "web")
ORDER = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")
DEFAULT_PORT_STEP = 1000

# The ports each service listens on (the setting, as an environment variable).
_PORTS = {
    "ingestion": ("INGESTION_PORT",),
    "recorder": ("RECORDER_PORT",),
    "triage": ("FAUST_WEB_PORT_BASE",),
    "escalation": ("FAUST_WEB_PORT_BASE",),
    "notification": ("FAUST_WEB_PORT_BASE",),
}


def process_names(workers: int) -> list[tuple[str, str, int]]:
    """(name, service, worker) of every process, in start order; worker 0 means 'the only one'."""
    if workers < 1:
        raise ValueError("WORKERS must be at least 1")
    names = []
    for service in ORDER:
        if workers == 1 or service in SINGLE:
            names.append((service, service, 0))
        else:
            names.extend((f"{service}-{k}", service, k) for k in range(1, workers + 1))
    return names


def parse_name(name: str) -> tuple[str, int]:
    """'triage-2' -> ('triage', 2); 'triage' -> ('triage', 0)."""
    service, _, index = name.rpartition("-")
    if service in SHARED and index.isdigit() and int(index) >= 1:
        return service, int(index)
    return name, 0


def _default(setting: str) -> int:
    return int(Settings.model_fields[setting.lower()].default)


def port_shift(worker: int, env: Mapping[str, str]) -> int:
    step = int(env.get("WORKER_PORT_STEP") or DEFAULT_PORT_STEP)
    return step * (worker - 1) if worker >= 2 else 0


def worker_env(service: str, worker: int, env: Mapping[str, str]) -> dict[str, str]:
    """What worker ``worker`` of ``service`` adds to ``env``: WORKER, and its shifted ports."""
    if worker == 0:
        return {}
    if service not in SHARED:
        raise ValueError(f"{service} runs as one worker")
    added = {"WORKER": str(worker)}
    shift = port_shift(worker, env)
    for variable in _PORTS[service]:
        added[variable] = str(int(env.get(variable) or _default(variable)) + shift)
    return added


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "names":
        for name, _, _ in process_names(int(argv[1])):
            print(name)
    elif len(argv) == 3 and argv[0] == "env":
        for key, value in worker_env(argv[1], int(argv[2]), os.environ).items():
            print(f"{key}={value}")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
