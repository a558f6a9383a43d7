"""incidentctl import: --plan on the PagerDuty and Opsgenie fixtures prints the mapping and what it cannot
carry over; --apply writes an organisation file the service starts with; a re-run changes nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness import REPO, TEST_CONFIG, end_process, remember_pid, wait_until

INCIDENTCTL = Path(sys.executable).with_name("incidentctl")
FIXTURES = REPO / "tests" / "fixtures" / "import"


def _ctl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    return subprocess.run([str(INCIDENTCTL), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def organisation(tmp_path) -> Path:
    path = tmp_path / "organisation.yaml"
    shutil.copy(TEST_CONFIG, path)
    return path


@pytest.mark.parametrize("source, mapped, left_out", [
    ("pagerduty", ["team Payments Platform", "teams.payments-platform", "schedule Payments Primary / Layer 1",
                   "rotations.payments-primary", "escalation_policies.payments-escalation", "services.checkout-api"],
     ["3 layers", "restrictions (daily_restriction)", "round-robin", "already over", "incidentctl token create"]),
    ("opsgenie", ["team Storage", "teams.storage", "schedule Storage_Schedule / Primary",
                  "rotations.storage-schedule-primary", "escalation_policies.storage-escalation", "services.object-store"],
     ["2 rotations", "'no one' slot", "unknown time zone 'Mars/Olympus'", "if not closed", "already over"]),
])
def test_plan_prints_the_mapping_and_what_cannot_be_carried_over(organisation, source, mapped, left_out):
    before = organisation.read_bytes()
    planned = _ctl("import", source, str(FIXTURES / f"{source}.json"), "--plan", "--config", str(organisation),
                   cwd=organisation.parent)
    assert planned.returncode == 0, planned.stderr
    for text in mapped + left_out:
        assert text in planned.stdout, (text, planned.stdout)
    assert "Nothing written (--plan)" in planned.stdout
    assert organisation.read_bytes() == before, "a plan writes nothing"


def test_apply_writes_an_organisation_the_service_starts_with_and_a_rerun_changes_nothing(platform, organisation):
    for source in ("pagerduty", "opsgenie"):
        applied = _ctl("import", source, str(FIXTURES / f"{source}.json"), "--apply", "--config", str(organisation),
                       cwd=organisation.parent)
        assert applied.returncode == 0, applied.stderr
        assert "Written:" in applied.stdout
    written = organisation.read_text()
    again = _ctl("import", "pagerduty", str(FIXTURES / "pagerduty.json"), "--apply", "--config", str(organisation),
                 cwd=organisation.parent)
    assert again.returncode == 0 and "0 added, 0 updated, 13 unchanged" in again.stdout, again.stdout
    assert organisation.read_text() == written, "a re-run is idempotent"

    # The ingestion service starts with the written file (its own port, prefix and data dir).
    port = 18180 + int(os.environ.get("TEST_PORT_OFFSET", "0"))
    env = {**platform.env, "INCIDENT_CONFIG": str(organisation), "INGESTION_PORT": str(port),
           "APP_PREFIX": "incident-import-test", "DATA_DIR": str(organisation.parent / "data")}
    log = organisation.parent / "ingestion.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "services.ingestion"], cwd=REPO, env=env, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
    remember_pid(platform.logs, proc.pid)
    try:
        def ready() -> bool:
            assert proc.poll() is None, f"ingestion exited with {proc.returncode}:\n{log.read_text()[-2000:]}"
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout=60, what="ingestion to start with the imported organisation")
    finally:
        end_process(proc, timeout=20)


def test_a_bad_export_writes_nothing_and_says_why(organisation, tmp_path):
    before = organisation.read_bytes()
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    refused = _ctl("import", "opsgenie", str(garbage), "--apply", "--config", str(organisation), cwd=tmp_path)
    assert refused.returncode == 7 and "is not JSON" in refused.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"teams": {"data": [{"description": "no name"}]}}')
    refused = _ctl("import", "opsgenie", str(wrong), "--apply", "--config", str(organisation), cwd=tmp_path)
    assert refused.returncode == 7 and "not shaped like opsgenie" in refused.stderr
    assert _ctl("import", "opsgenie", str(garbage), cwd=tmp_path).returncode == 2, "--plan or --apply is required"
    assert organisation.read_bytes() == before
