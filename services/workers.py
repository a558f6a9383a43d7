"""Several workers per service: each worker's name, ports, data directory and environment.

``WORKERS=1`` (the default) is today's layout: one process per service, named after it,
on the configured ports. With ``WORKERS=N`` every shared service runs N processes named
``triage-1`` .. ``triage-N``: worker k listens on each of its service's ports plus
``WORKER_PORT_STEP`` x (k - 1) (1000 by default, so worker 1 keeps the configured ports),
keeps its Faust data under ``DATA_DIR/<service>-<k>``, and joins the same consumer group
as its siblings (same ``APP_PREFIX``), so Kafka splits the partitions between them.

Metrics is shared too: its workers split the counting, and each exports every incident's
numbers from a mirror of the whole tables (shared/kafka/changelog_mirror.py), because its
windowed gauges are means over every incident and a worker's own tables hold only its
partitions. The web console stays one process (it holds only sessions).

    python -m services.workers names WORKERS       the process names, one a line
    python -m services.workers env SERVICE WORKER  the environment a worker adds (KEY=VALUE lines)
    python -m services.workers prometheus WORKERS OUT
                                                   a Prometheus config scraping every worker
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

import yaml

from shared.settings import Settings

# Shared between workers through Kafka's consumer groups (ingestion is stateless).
SHARED = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics")
# Always one process: the web console.
SINGLE = ("web",)
ORDER = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")
DEFAULT_PORT_STEP = 1000

# The ports each service listens on (the setting, as an environment variable).
_PORTS = {
    "ingestion": ("INGESTION_PORT",),
    "recorder": ("RECORDER_PORT",),
    "triage": ("FAUST_WEB_PORT_BASE",),
    "escalation": ("FAUST_WEB_PORT_BASE",),
    "notification": ("FAUST_WEB_PORT_BASE",),
    "metrics": ("METRICS_PORT",),
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


PROMETHEUS_TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "prometheus.yml"
SCRAPE_JOB = "incident-platform"


def metrics_port(service: str, worker: int, env: Mapping[str, str]) -> int:
    """The port serving ``/metrics`` for worker ``worker`` of ``service`` (0: the only one)."""
    from shared.kafka.faust_app import SERVICE_INDEX  # the Faust web port of each service

    if service == "metrics":
        port = int(env.get("METRICS_PORT") or _default("METRICS_PORT"))
    elif service == "ingestion":
        port = int(env.get("INGESTION_PORT") or _default("INGESTION_PORT"))
    elif service == "recorder":
        port = int(env.get("RECORDER_PORT") or _default("RECORDER_PORT"))
    else:
        port = int(env.get("FAUST_WEB_PORT_BASE") or _default("FAUST_WEB_PORT_BASE")) + SERVICE_INDEX[service]
    return port + port_shift(worker, env)


def prometheus_config(template: dict, workers: int, env: Mapping[str, str], rules_dir: Path) -> dict:
    """``template`` (deploy/prometheus/prometheus.yml, written for one process per service)
    with its scrape job listing every process: with several workers, one target each, labelled
    with its ``service`` and its ``worker``, so that no worker goes unscraped and a per-worker
    series never collides with its sibling's (sum them by ``service``). Rule files are made
    absolute: the config is written elsewhere."""
    config = dict(template)
    config["rule_files"] = [str(rules_dir / name) for name in template.get("rule_files", [])]
    scraped = {group["labels"]["service"] for job in template["scrape_configs"] if job["job_name"] == SCRAPE_JOB
               for group in job["static_configs"]}
    groups = []
    for _, service, worker in process_names(workers):
        if service not in scraped:
            continue  # the web console has no /metrics of its own
        labels = {"service": service, **({"worker": str(worker)} if worker else {})}
        groups.append({"targets": [f"127.0.0.1:{metrics_port(service, worker, env)}"], "labels": labels})
    config["scrape_configs"] = [dict(job, static_configs=groups) if job["job_name"] == SCRAPE_JOB else job
                                for job in template["scrape_configs"]]
    return config


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "names":
        for name, _, _ in process_names(int(argv[1])):
            print(name)
    elif len(argv) == 3 and argv[0] == "env":
        for key, value in worker_env(argv[1], int(argv[2]), os.environ).items():
            print(f"{key}={value}")
    elif len(argv) == 3 and argv[0] == "prometheus":
        template = yaml.safe_load(PROMETHEUS_TEMPLATE.read_text())
        config = prometheus_config(template, int(argv[1]), os.environ, PROMETHEUS_TEMPLATE.parent)
        Path(argv[2]).write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
