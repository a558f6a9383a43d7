"""Several workers per service: names, ports and data dirs (services/workers.py), the group
status lines (services/group_status.py), and TOPIC_PARTITIONS checked against the topics."""
from __future__ import annotations

import pytest

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from services.group_status import lines, owned
from services.supervisor import Supervisor
from services.workers import SHARED, parse_name, process_names, worker_env
from shared.kafka.admin import TopologyError, check_partitions, mismatches
from shared.kafka.faust_app import create_app
from shared.settings import Settings


def test_one_worker_is_todays_layout():
    assert [name for name, _, _ in process_names(1)] == [
        "ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web"]
    assert all(worker == 0 for _, _, worker in process_names(1))
    assert worker_env("triage", 0, {}) == {}


def test_two_workers_name_each_process_and_keep_the_web_console_single():
    names = [name for name, _, _ in process_names(2)]
    assert names == ["ingestion-1", "ingestion-2", "recorder-1", "recorder-2", "triage-1", "triage-2",
                     "escalation-1", "escalation-2", "notification-1", "notification-2", "metrics-1", "metrics-2",
                     "web"]
    assert parse_name("triage-2") == ("triage", 2)
    assert parse_name("metrics-2") == ("metrics", 2)
    assert parse_name("web") == ("web", 0)
    assert worker_env("metrics", 2, {"METRICS_PORT": "19108"}) == {"WORKER": "2", "METRICS_PORT": "20108"}
    with pytest.raises(ValueError):
        worker_env("web", 2, {})
    with pytest.raises(ValueError):
        process_names(0)


def test_worker_ports_shift_by_the_step_and_worker_one_keeps_the_configured_ports():
    env = {"INGESTION_PORT": "18210", "RECORDER_PORT": "18221", "FAUST_WEB_PORT_BASE": "16196"}
    assert worker_env("ingestion", 1, env) == {"WORKER": "1", "INGESTION_PORT": "18210"}
    assert worker_env("ingestion", 2, env) == {"WORKER": "2", "INGESTION_PORT": "19210"}
    assert worker_env("recorder", 3, env) == {"WORKER": "3", "RECORDER_PORT": "20221"}
    assert worker_env("triage", 2, {**env, "WORKER_PORT_STEP": "100"})["FAUST_WEB_PORT_BASE"] == "16296"
    # Unset: the settings' defaults are shifted.
    assert worker_env("escalation", 2, {})["FAUST_WEB_PORT_BASE"] == "7066"
    # Every port of every worker of every shared service differs from every other one's.
    ports = [value for service in SHARED for k in (1, 2, 3) for key, value in worker_env(service, k, env).items()
             if key != "WORKER" and key != "FAUST_WEB_PORT_BASE"]
    assert len(ports) == len(set(ports))


def test_the_supervisor_gives_its_child_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INGESTION_PORT", "8080")
    supervisor = Supervisor("ingestion", None, worker=2)
    assert supervisor.name == "ingestion-2"
    assert supervisor.child_env["INGESTION_PORT"] == "9080" and supervisor.child_env["WORKER"] == "2"
    assert Supervisor("ingestion", None).child_env is None  # one worker: the supervisor's own environment


def test_each_worker_has_its_own_data_dir_and_client_id_in_one_group(tmp_path):
    one = create_app("triage", Settings(data_dir=tmp_path), process_metrics=False)
    second = create_app("triage", Settings(data_dir=tmp_path, worker=2, faust_web_port_base=7066), process_metrics=False)
    assert one.conf.id == second.conf.id == "incident-triage"  # one consumer group
    assert str(one.conf.datadir) == str(tmp_path / "triage")
    assert str(second.conf.datadir) == str(tmp_path / "triage-2")
    assert second.conf.broker_client_id == "incident-triage-2"
    assert one.conf.broker_client_id != second.conf.broker_client_id
    assert second.conf.web_port == 7066


def _assignment(topics: dict[str, list[int]]) -> bytes:
    return ConsumerProtocolMemberAssignment(0, sorted(topics.items()), b"").encode()


def test_group_status_names_each_worker_and_its_partitions():
    groups = [(0, "incident-triage", "Stable", "consumer", "faust", [
        ("m2", "incident-triage-2", "/127.0.0.1", b"", _assignment({"alerts.intake": [2, 3], "incident.commands": [2, 3]})),
        ("m1", "incident-triage-1", "/127.0.0.1", b"", _assignment(
            {"alerts.intake": [0, 1], "incident.commands": [0, 1], "incident-triage-__assignor-__leader": [0]})),
    ])]
    out = lines(groups, 4, "incident")
    assert out[0].split()[:3] == ["triage-1", "partitions", "[0,"]
    assert "of 2 topics and incident-triage-__assignor-__leader" in out[0]
    assert "triage-2" in out[1] and "[2, 3] of 2 topics (Stable)" in out[1]
    assert owned(b"", 4) == ([], 0, [])
    single = lines([(0, "incident-metrics", "Stable", "consumer", "faust", [
        ("m", "faust-0.15.3", "/127.0.0.1", b"", _assignment({"alerts.intake": [0, 1, 2, 3]}))])], 4, "incident")
    assert single[0].split()[:2] == ["metrics", "partitions"] and "[0, 1, 2, 3] of 1 topics" in single[0]
    assert "no members" in lines([(0, "incident-metrics", "Empty", "", "", [])], 4, "incident")[0]


def test_topic_partitions_differing_from_the_topics_stops_naming_the_setting_and_both_numbers():
    expected = {"alerts.intake": 4, "incident-triage-incidents-changelog": 4, "incident-triage-__assignor-__leader": 1}
    described = [
        {"topic": "alerts.intake", "error_code": 0, "partitions": [{"partition": p} for p in range(8)]},
        {"topic": "incident-triage-incidents-changelog", "error_code": 0, "partitions": [{"partition": p} for p in range(8)]},
        {"topic": "incident-triage-__assignor-__leader", "error_code": 0, "partitions": [{"partition": 0}]},
    ]
    with pytest.raises(TopologyError) as raised:
        check_partitions(expected, described, 4)
    message = str(raised.value)
    assert "TOPIC_PARTITIONS=4" in message
    assert "alerts.intake has 8 partitions, the configuration expects 4" in message
    assert "incident-triage-incidents-changelog has 8 partitions" in message  # changelogs are checked too
    assert "leader" not in message


def test_matching_or_missing_topics_pass_the_check():
    expected = {"alerts.intake": 4, "new.topic": 4}
    described = [{"topic": "alerts.intake", "error_code": 0, "partitions": [{"partition": p} for p in range(4)]},
                 {"topic": "new.topic", "error_code": 3, "partitions": []}]
    assert mismatches(expected, described) == []
    check_partitions(expected, described, 4)
