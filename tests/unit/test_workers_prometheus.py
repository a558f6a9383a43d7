"""Prometheus scrapes every worker (services/workers.py ``prometheus_config``): with WORKERS=2
each shared service's second worker is a target of its own, labelled with its worker."""
from __future__ import annotations

import yaml

from services.workers import PROMETHEUS_TEMPLATE, SCRAPE_JOB, prometheus_config

TEMPLATE = yaml.safe_load(PROMETHEUS_TEMPLATE.read_text())
ENV = {"INGESTION_PORT": "8080", "RECORDER_PORT": "8091", "FAUST_WEB_PORT_BASE": "6066", "METRICS_PORT": "9108"}


def _targets(config: dict) -> dict[str, dict]:
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == SCRAPE_JOB]
    found = {}
    for group in job["static_configs"]:
        for target in group["targets"]:
            assert target not in found, f"{target} scraped twice"
            found[target] = group["labels"]
    return found


def test_one_worker_per_service_scrapes_exactly_what_the_shipped_config_does():
    generated = prometheus_config(TEMPLATE, 1, ENV, PROMETHEUS_TEMPLATE.parent)
    assert _targets(generated) == _targets(TEMPLATE)
    assert generated["global"] == TEMPLATE["global"]
    assert generated["rule_files"] == [str(PROMETHEUS_TEMPLATE.parent / "rules.yml")]
    assert all(PROMETHEUS_TEMPLATE.parent.joinpath(name).is_file() for name in TEMPLATE["rule_files"])


def test_two_workers_are_two_targets_of_each_shared_service():
    targets = _targets(prometheus_config(TEMPLATE, 2, ENV, PROMETHEUS_TEMPLATE.parent))
    assert targets == {
        "127.0.0.1:8080": {"service": "ingestion", "worker": "1"},
        "127.0.0.1:9080": {"service": "ingestion", "worker": "2"},
        "127.0.0.1:8091": {"service": "recorder", "worker": "1"},
        "127.0.0.1:9091": {"service": "recorder", "worker": "2"},
        "127.0.0.1:6066": {"service": "triage", "worker": "1"},
        "127.0.0.1:7066": {"service": "triage", "worker": "2"},
        "127.0.0.1:6067": {"service": "escalation", "worker": "1"},
        "127.0.0.1:7067": {"service": "escalation", "worker": "2"},
        "127.0.0.1:6068": {"service": "notification", "worker": "1"},
        "127.0.0.1:7068": {"service": "notification", "worker": "2"},
        "127.0.0.1:9108": {"service": "metrics", "worker": "1"},
        "127.0.0.1:10108": {"service": "metrics", "worker": "2"},
    }


def test_the_test_profile_ports_and_the_port_step_are_followed():
    env = {**ENV, "INGESTION_PORT": "18080", "FAUST_WEB_PORT_BASE": "16066", "WORKER_PORT_STEP": "100"}
    targets = _targets(prometheus_config(TEMPLATE, 3, env, PROMETHEUS_TEMPLATE.parent))
    assert targets["127.0.0.1:18280"] == {"service": "ingestion", "worker": "3"}
    assert targets["127.0.0.1:16268"] == {"service": "notification", "worker": "3"}
