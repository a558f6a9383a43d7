"""A service given a bad organisation file or environment stops at once, naming the field."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(service: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("service", ["ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web"])
def test_a_bad_organisation_file_names_the_field(service, tmp_path):
    bad = tmp_path / "organisation.yaml"
    bad.write_text("teams: {ops: {rotation: nobody}}\nservices: {}\nfallback_team: ops\nsecurity_team: ops\n")
    result = _run(service, INCIDENT_CONFIG=str(bad), KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert result.returncode == 78  # EX_CONFIG: the supervisor does not restart it
    assert "teams.ops.rotation: unknown rotation 'nobody'" in result.stderr


def test_a_bad_environment_value_names_the_variable():
    result = _run("ingestion", INGESTION_PORT="eighty")
    assert result.returncode == 78  # EX_CONFIG: the supervisor does not restart it
    assert "INGESTION_PORT" in result.stderr


def test_a_bad_recorder_setting_names_the_variable():
    result = _run("recorder", ALERT_REFS_PER_INCIDENT="0")
    assert result.returncode == 78
    assert "ALERT_REFS_PER_INCIDENT" in result.stderr
