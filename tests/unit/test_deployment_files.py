"""docker-compose.yml and the README stay true to the code (Docker itself cannot run here)."""
from __future__ import annotations

from pathlib import Path

import yaml

from shared.catalogue import markdown_table
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ("ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web")


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


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
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert set(env) <= known, f"{name} sets variables the services do not read: {set(env) - known}"
    assert services["ingestion"]["environment"]["INGESTION_PORT"] == "8080"
    assert services["metrics"]["environment"]["METRICS_PORT"] == "9108"
    assert services["recorder"]["environment"]["RECORDER_PORT"] == "8091"
    web = services["web"]["environment"]
    assert web["WEB_PORT"] == "8090" and web["INCIDENT_API_URL"] == "http://ingestion:8080"
    assert web["METRICS_URL"] == "http://metrics:9108/metrics"


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
