"""TOPIC_REPLICATION and TOPIC_MIN_INSYNC_REPLICAS: one setting for the topics created up front
and for Faust's own, defaults that change nothing on one broker, and a clear stop when the
setting cannot work."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.catalogue import ALERTS_INTAKE
from shared.kafka.admin import _new_topic, replication, replication_mismatches, too_few_brokers
from shared.kafka.faust_app import create_app
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _described(name: str, replicas: list[list[int]]) -> dict:
    return {"topic": name, "error_code": 0,
            "partitions": [{"partition": i, "leader": r[0], "replicas": r, "isr": r, "error_code": 0}
                           for i, r in enumerate(replicas)]}


def test_the_defaults_are_one_copy_as_before():
    settings = Settings()
    assert (settings.topic_replication, settings.topic_min_insync_replicas) == (1, 1)
    topic = _new_topic(ALERTS_INTAKE, 4, **replication(settings))
    assert topic.replication_factor == 1 and topic.topic_configs["min.insync.replicas"] == "1"


def test_topics_and_faust_follow_the_one_setting(tmp_path):
    settings = Settings(topic_replication=3, topic_min_insync_replicas=2, data_dir=tmp_path)
    topic = _new_topic(ALERTS_INTAKE, 4, **replication(settings))
    assert (topic.replication_factor, topic.topic_configs["min.insync.replicas"]) == (3, "2")
    assert create_app("triage", settings, process_metrics=False).conf.topic_replication_factor == 3


def test_existing_topics_with_other_replication_are_named():
    described = [_described("alerts.intake", [[1], [2]]), _described("incident.audit", [[1, 2, 3], [2, 3, 1]])]
    assert replication_mismatches(3, described) == [
        "alerts.intake has 1 replicas, the configuration expects 3"]
    assert replication_mismatches(3, [_described("incident.audit", [[1, 2, 3]])]) == []


def test_more_copies_than_brokers_names_the_setting():
    assert too_few_brokers(3, 3) is None and too_few_brokers(1, 1) is None
    assert "TOPIC_REPLICATION is 3 but the cluster has 1 broker(s)" in too_few_brokers(3, 1)


def test_min_insync_above_replication_stops_the_service_naming_both():
    result = subprocess.run([sys.executable, "-m", "services.ingestion"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "TOPIC_REPLICATION": "2", "TOPIC_MIN_INSYNC_REPLICAS": "3"},
                            timeout=60)
    assert result.returncode == 78, result.stderr  # EX_CONFIG: the supervisor does not restart it
    assert "TOPIC_MIN_INSYNC_REPLICAS (3) is more than TOPIC_REPLICATION (2)" in result.stderr
