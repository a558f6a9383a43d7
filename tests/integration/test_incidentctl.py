"""incidentctl, the installed console script, drives one incident from acknowledge to close."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness import incident_for, remember_secret

INCIDENTCTL = Path(sys.executable).with_name("incidentctl")


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture(scope="module")
def ctl(platform, tokens, tmp_path_factory):
    """incidentctl as a person's shell runs it: INCIDENT_API_URL and INCIDENT_TOKEN in the environment."""
    assert INCIDENTCTL.exists(), f"{INCIDENTCTL} is not installed (pyproject.toml [project.scripts])"
    home = tmp_path_factory.mktemp("incidentctl")
    base = {k: v for k, v in os.environ.items() if not k.startswith("INCIDENT_")}
    base.update(INCIDENT_API_URL=platform.api_url, INCIDENT_CREDENTIALS=str(home / "none.env"))

    def run(*args: str, token: str | None = None, role: str = "platform-admin") -> Run:
        env = dict(base, INCIDENT_TOKEN=token if token is not None else tokens[role])
        done = subprocess.run([str(INCIDENTCTL), *args], env=env, cwd=home, capture_output=True, text=True,
                              timeout=60)
        return Run(done.returncode, done.stdout, done.stderr)

    return run


def _ok(result: Run) -> Run:
    assert result.code == 0, f"exit {result.code}: {result.err}"
    return result


def test_incidentctl_drives_an_incident_from_acknowledge_to_close(ctl, intake, admin, unique, tmp_path):
    alertname = f"CRMQueueStuck-{unique}"
    sent = intake.post("/v1/alerts", json={"service": "connector:CRM", "summary": f"CRM queue stuck {unique}",
                                           "severity": "critical", "labels": {"alertname": alertname}})
    assert sent.status_code == 202
    incident_id = incident_for(admin, alertname)["incident_id"]

    listed = _ok(ctl("list", "--status", "triggered", "--service", "connector:CRM"))
    header, *rows = listed.out.splitlines()
    assert header.split()[:4] == ["ID", "SEV", "STATUS", "SERVICE"]
    assert any(row.split()[:3] == [incident_id, "SEV1", "triggered"] for row in rows)
    assert incident_id in [i["incident_id"] for i in _ok(ctl("list", "-o", "json")).json()["incidents"]]

    acked = _ok(ctl("ack", incident_id, "--note", "on it"))
    assert f"{incident_id} acknowledged: status acknowledged" in acked.out
    again = ctl("ack", incident_id)
    assert again.code == 6 and "already acknowledged" in again.err
    early = ctl("close", incident_id, "--verification", "too soon")
    assert early.code == 6 and "cannot close" in early.err

    _ok(ctl("update", incident_id, "Sync paused while we replay batches"))
    assert _ok(ctl("mitigate", incident_id, "Paused the sync job", "--step", "1", "-o", "json")).json()["status"] \
        == "mitigating"
    _ok(ctl("evidence", incident_id, "--title", "Queue depth graph", "--url", "https://grafana.example.com/d/q"))
    notes = tmp_path / "notes.txt"
    notes.write_text("batch 42 failed with HTTP 502 from the CRM vendor\n")
    _ok(ctl("evidence", incident_id, "--title", "Sync log excerpt", "--file", str(notes)))

    shown = _ok(ctl("show", incident_id)).out
    assert shown.splitlines()[0].startswith(f"{incident_id}  SEV1  mitigating")
    assert "[x] 1. Pause the sync job" in shown and "Queue depth graph" in shown and "Timeline" in shown
    record = yaml.safe_load(_ok(ctl("show", incident_id, "-o", "yaml")).out)
    assert (record["incident_id"], record["status"], record["service"]) == (incident_id, "mitigating",
                                                                             "connector:CRM")

    resolved = _ok(ctl("resolve", incident_id, "--note", "replayed", "-o", "json")).json()
    assert resolved["status"] == "resolved" and resolved["postmortem"]["status"] == "draft"
    incomplete = ctl("postmortem", "complete", incident_id)
    assert incomplete.code == 6 and "sections" in incomplete.err
    _ok(ctl("postmortem", "edit", incident_id, "--summary", "CRM sync stalled", "--impact", "Leads delayed 40 min",
            "--root-cause", "Vendor rate limit"))
    added = _ok(ctl("postmortem", "action-item", "add", incident_id, "--title", "Alert on vendor 429s",
                    "--owner", "alice", "--due", "2026-12-31", "--priority", "P2", "-o", "json")).json()
    (item,) = added["action_items"]
    updated = _ok(ctl("postmortem", "action-item", "update", incident_id, item["item_id"], "--status", "in_progress"))
    assert "in_progress" in updated.out
    _ok(ctl("postmortem", "complete", incident_id))
    assert "Postmortem: completed (required)" in _ok(ctl("postmortem", "show", incident_id)).out

    closed = _ok(ctl("close", incident_id, "--verification", "Queue empty for an hour"))
    assert f"{incident_id} closed: status closed" in closed.out
    final = _ok(ctl("show", incident_id, "-o", "json")).json()
    assert final["status"] == "closed" and final["mttr_minutes"] is not None

    bundle_file = tmp_path / "bundle.json"
    assert "exported to" in _ok(ctl("export", incident_id, "--file", str(bundle_file), role="compliance-officer")).out
    bundle = json.loads(bundle_file.read_text())
    assert bundle["incident"]["incident_id"] == incident_id
    assert {e["type"] for e in bundle["audit_events"]} >= {"incident.opened", "incident.updated", "incident.closed"}
    assert len(bundle["evidence"]) == 2

    reopened = _ok(ctl("reopen", incident_id, "--reason", "queue stuck again", "-o", "json")).json()
    assert reopened["status"] in ("triggered", "acknowledged")


def test_errors_are_clear_and_exit_codes_reliable(ctl, tokens):
    bad = ctl("list", token="inc_not-a-real-token")
    assert bad.code == 3 and "invalid or revoked" in bad.err and bad.out == ""
    missing = ctl("show", "INC-2000-01-01-999")
    assert missing.code == 5 and "no incident INC-2000-01-01-999" in missing.err
    malformed = ctl("show", "not-an-incident")
    assert malformed.code == 7 and "incident_id" in malformed.err
    forbidden = ctl("ack", "INC-2000-01-01-999", role="compliance-officer")
    assert forbidden.code == 4 and "may not" in forbidden.err
    usage = ctl("close", "INC-2000-01-01-999")
    assert usage.code == 2 and "--verification" in usage.err
    unreachable = subprocess.run([str(INCIDENTCTL), "--api-url", "http://127.0.0.1:9", "list"], capture_output=True,
                                 text=True, env={**os.environ, "INCIDENT_TOKEN": tokens["platform-admin"]}, timeout=60)
    assert unreachable.returncode == 8 and "cannot reach the API" in unreachable.stderr
    helped = ctl("--help")
    assert helped.code == 0 and "exit codes:" in helped.out and "6  refused by the lifecycle" in helped.out


def test_token_create_prints_a_working_token_once(ctl, unique):
    created = _ok(ctl("token", "create", "--role", "observability-engineer", "--name", f"cli-{unique}"))
    token = remember_secret(created.out.strip())
    assert token.startswith("inc_") and "\n" not in token
    assert "shown only this once" in created.err
    assert _ok(ctl("list", token=token)).out
    as_json = _ok(ctl("token", "create", "--role", "integration", "--name", f"cli-key-{unique}", "-o", "json")).json()
    assert as_json["role"] == "integration" and len(remember_secret(as_json["token"])) == 32
    denied = ctl("token", "create", "--role", "platform-admin", "--name", f"escalate-{unique}", token=token)
    assert denied.code == 4
