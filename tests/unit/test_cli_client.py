"""incidentctl without a server: where it finds credentials, how answers become exit codes and output."""
from __future__ import annotations

import json
import os

import httpx
import pytest

from services.cli import main as cli
from services.cli.client import Api, CliError, Exit, incident_path
from services.cli.config import Target, resolve
from services.cli.render import incident_list, table


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("INCIDENT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _credentials(path, **values) -> None:
    lines = [f"export {name}='{value}'" for name, value in values.items()]
    lines.append('export INCIDENT_TOKEN="$INCIDENT_TOKEN_PLATFORM_ADMIN"')
    path.write_text("\n".join(lines) + "\n")


def test_environment_wins_over_the_credentials_file(clean_env, monkeypatch):
    creds = clean_env / "creds.env"
    _credentials(creds, INCIDENT_API_URL="http://file:1", INCIDENT_TOKEN_PLATFORM_ADMIN="from-file")
    monkeypatch.setenv("INCIDENT_CREDENTIALS", str(creds))
    assert resolve() == Target("http://file:1", "from-file", f"INCIDENT_TOKEN in {creds}")
    monkeypatch.setenv("INCIDENT_TOKEN", "from-env")
    monkeypatch.setenv("INCIDENT_API_URL", "http://env:2/")
    target = resolve()
    assert (target.api_url, target.token, target.token_from) == ("http://env:2", "from-env", "$INCIDENT_TOKEN")
    assert resolve(api_url="http://flag:3").api_url == "http://flag:3"


def test_local_credentials_file_and_role_tokens(clean_env):
    (clean_env / ".local").mkdir()
    _credentials(clean_env / ".local" / "credentials.env", INCIDENT_TOKEN_PLATFORM_ADMIN="admin-secret",
                 INCIDENT_TOKEN_COMPLIANCE_OFFICER="auditor-secret")
    assert resolve().token == "admin-secret"
    assert resolve(role="compliance-officer").token == "auditor-secret"
    assert resolve().api_url == "http://127.0.0.1:8080"


def _api(handler) -> Api:
    return Api(Target("http://api", "tok", "$INCIDENT_TOKEN"), transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "status, code",
    [(400, Exit.INVALID), (401, Exit.UNAUTHENTICATED), (403, Exit.FORBIDDEN), (404, Exit.NOT_FOUND),
     (409, Exit.CONFLICT), (413, Exit.INVALID), (429, Exit.UNAVAILABLE), (500, Exit.UNAVAILABLE),
     (503, Exit.UNAVAILABLE)],
)
def test_api_errors_become_stable_exit_codes(status, code):
    api = _api(lambda request: httpx.Response(status, json={"error": "cannot close", "detail": None}))
    with pytest.raises(CliError) as exc:
        api.post(incident_path("INC-2026-11-27-001", "close"), {"verification": "ok"})
    assert exc.value.code is code
    assert "cannot close" in exc.value.message and str(status) in exc.value.message


def test_field_errors_are_shown_and_the_token_is_sent():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers["authorization"]
        seen["path"] = request.url.path
        return httpx.Response(400, json={"error": "invalid request: title",
                                         "detail": [{"field": "title", "message": "Field required"}]})

    with pytest.raises(CliError) as exc:
        _api(handler).post("/v1/incidents", {})
    assert exc.value.hint == "title: Field required"
    assert seen == {"auth": "Bearer tok", "path": "/v1/incidents"}


def test_unreachable_api_and_missing_token():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(CliError) as exc:
        _api(refuse).get("/v1/incidents")
    assert exc.value.code is Exit.UNAVAILABLE
    with pytest.raises(CliError) as exc:
        Api(Target("http://api", None, "$INCIDENT_TOKEN")).get("/v1/incidents")
    assert exc.value.code is Exit.UNAUTHENTICATED


def test_incident_ids_cannot_escape_their_path():
    assert incident_path("../tokens", "close") == "/v1/incidents/..%2Ftokens/close"


def test_tables_align_and_truncate():
    text = table(("ID", "TITLE"), [("INC-1", "short"), ("INC-22", "x" * 80)], widths={"TITLE": 10})
    lines = text.splitlines()
    assert lines[0] == "ID      TITLE"
    assert lines[2] == "INC-22  xxxxxxxxx…"
    assert incident_list([]) == "no incidents"


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--status", "triggered", "-o", "json"],
        ["show", "INC-2026-11-27-001", "-o", "yaml"],
        ["ack", "INC-2026-11-27-001"],
        ["update", "INC-2026-11-27-001", "still investigating"],
        ["mitigate", "INC-2026-11-27-001", "paused the sync", "--step", "1"],
        ["evidence", "INC-2026-11-27-001", "--title", "graph", "--url", "https://grafana/x"],
        ["resolve", "INC-2026-11-27-001"],
        ["close", "INC-2026-11-27-001", "--verification", "quiet for an hour"],
        ["reopen", "INC-2026-11-27-001", "--reason", "it is back"],
        ["postmortem", "show", "INC-2026-11-27-001"],
        ["postmortem", "edit", "INC-2026-11-27-001", "--summary", "s", "--root-cause", "r"],
        ["postmortem", "action-item", "add", "INC-2026-11-27-001", "--title", "t", "--owner", "alice"],
        ["postmortem", "action-item", "update", "INC-2026-11-27-001", "AI-1", "--status", "done"],
        ["postmortem", "complete", "INC-2026-11-27-001"],
        ["export", "INC-2026-11-27-001", "-o", "yaml"],
        ["token", "create", "--role", "observability-engineer", "--name", "grafana-bot"],
    ],
)
def test_every_contract_command_parses(argv):
    assert cli.build_parser().parse_args(argv).handler is not None


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["close", "INC-2026-11-27-001"])  # --verification is required
    assert exc.value.code == Exit.USAGE
    assert "--verification" in capsys.readouterr().err


def test_main_prints_json_and_returns_the_exit_code(monkeypatch, capsys):
    record = {"incident_id": "INC-2026-11-27-001", "status": "acknowledged", "severity": "SEV2", "version": 3}
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, json.loads(request.content or b"{}")))
        if request.url.path.endswith("/close"):
            return httpx.Response(409, json={"error": "cannot close an incident that is acknowledged", "detail": {}})
        return httpx.Response(200, json=record)

    real_api = cli.Api
    monkeypatch.setattr(cli, "Api", lambda target, timeout: real_api(target, timeout, httpx.MockTransport(handler)))
    monkeypatch.setenv("INCIDENT_TOKEN", "tok")
    assert cli.main(["ack", "INC-2026-11-27-001", "--note", "mine", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == record
    assert calls[-1] == ("POST", "/v1/incidents/INC-2026-11-27-001/acknowledge", {"note": "mine"})
    assert cli.main(["close", "INC-2026-11-27-001", "-m", "verified"]) == Exit.CONFLICT
    err = capsys.readouterr().err
    assert "cannot close an incident that is acknowledged (HTTP 409)" in err


def test_token_create_role_is_not_the_global_as_role():
    args = cli.build_parser().parse_args(["token", "create", "--role", "observability-engineer", "--name", "bot"])
    assert (args.role, args.as_role) == ("observability-engineer", None)
    args = cli.build_parser().parse_args(["--as", "compliance-officer", "list"])
    assert args.as_role == "compliance-officer"
