"""docker-compose.yml and the README stay true to the code (Docker itself cannot run here)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from shared.catalogue import markdown_table
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _resolved(env: dict, values: dict[str, str] | None = None) -> dict[str, str]:
    """An environment block as compose resolves ${VAR:-default} with ``values`` set (none: defaults)."""
    values = values or {}

    def one(value) -> str:
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m[1], m[2]), str(value))

    return {name: one(value) for name, value in env.items()}


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_compose_runs_every_service_from_the_one_image():
    services = _compose()["services"]
    assert {"kafka", "postgres", "prometheus", *APP_SERVICES} <= set(services)
    for name in APP_SERVICES:
        spec = services[name]
        assert spec["command"] == ["python", "-m", f"services.{name}"]
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        assert spec["image"] == "incident-handling:local"
    assert (REPO / "deploy" / "Dockerfile").exists()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_compose_passes_the_environment_contract():
    services = _compose()["services"]
    known = {name.upper() for name in Settings.model_fields}
    for name in APP_SERVICES:
        env = _resolved(services[name]["environment"])
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["TOPIC_REPLICATION"] == env["TOPIC_MIN_INSYNC_REPLICAS"] == "1"
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert set(env) <= known, f"{name} sets variables the services do not read: {set(env) - known}"
    assert services["ingestion"]["environment"]["INGESTION_PORT"] == "8080"
    assert services["metrics"]["environment"]["METRICS_PORT"] == "9108"
    assert services["recorder"]["environment"]["RECORDER_PORT"] == "8091"
    web = services["web"]["environment"]
    assert web["WEB_PORT"] == "8090" and web["INCIDENT_API_URL"] == "http://ingestion:8080"
    assert web["METRICS_URL"] == "http://metrics:9108/metrics"


def test_compose_cluster_profile_is_three_brokers_with_replication():
    services = _compose()["services"]
    cluster = _env_file(REPO / "deploy" / "compose" / "cluster.env")
    assert cluster["COMPOSE_PROFILES"] == "cluster"
    nodes = {name: _resolved(services[name]["environment"], cluster) for name in ("kafka", "kafka-2", "kafka-3")}
    assert "profiles" not in services["kafka"]  # plain `docker compose up`: one broker, as before
    assert services["kafka-2"]["profiles"] == services["kafka-3"]["profiles"] == ["cluster"]
    assert _resolved(services["kafka"]["environment"])["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    for n, (name, env) in enumerate(nodes.items(), start=1):
        assert services[name]["image"].startswith("apache/kafka:")
        assert env["KAFKA_NODE_ID"] == str(n) and env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1
    assert len({str(services[name]["volumes"]) for name in nodes}) == 3  # a data volume each
    for name in APP_SERVICES:
        env = _resolved(services[name]["environment"], cluster)
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        assert (env["TOPIC_REPLICATION"], env["TOPIC_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def test_make_up_starts_the_web_console():
    script = (REPO / "deploy" / "scripts" / "services.sh").read_text()
    assert "SERVICES=(ingestion recorder triage escalation notification metrics web)" in script
    assert "WEB_PORT" in script


def test_readme_topic_table_is_the_catalogue():
    readme = (REPO / "README.md").read_text()
    assert markdown_table() in readme, "regenerate the README topic table with `make topics`"


def test_readme_names_the_two_commands():
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_compose_runs_workers_replicas_of_each_shared_service_and_prometheus_finds_each():
    from services.workers import SHARED, SINGLE

    services = _compose()["services"]
    replicated = {name for name, spec in services.items() if "deploy" in spec}
    # Ingestion and metrics publish their ports, so compose keeps them one container each.
    assert replicated == set(SHARED) - {"ingestion", "metrics"}
    for name in replicated:
        assert _resolved(services[name]["deploy"]) == {"replicas": "1"}
        assert _resolved(services[name]["deploy"], {"WORKERS": "2"}) == {"replicas": "2"}
    assert not set(SINGLE) & replicated
    prometheus = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.compose.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert "static_configs" not in job  # a fixed target would scrape one replica of many
    found = {sd["names"][0]: sd["port"] for sd in job["dns_sd_configs"]}
    assert found == {"ingestion": 8080, "recorder": 8091, "triage": 6066, "escalation": 6067,
                     "notification": 6068, "metrics": 9108}
    assert {"source_labels": ["__meta_dns_name"], "target_label": "service"} in job["relabel_configs"]
