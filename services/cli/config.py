"""Where incidentctl finds the API and its token: the environment, then .local/credentials.env."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from shared.settings import REPO_ROOT

from .credentials import read_env_file

DEFAULT_API_URL = "http://127.0.0.1:8080"
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


@dataclass(frozen=True)
class Target:
    api_url: str
    token: str | None
    token_from: str  # where the token came from, for error messages


def credential_files() -> list[Path]:
    """The file named by INCIDENT_CREDENTIALS, else .local/credentials.env here or in the checkout."""
    named = os.environ.get("INCIDENT_CREDENTIALS")
    if named:
        return [Path(named)]
    here = Path.cwd() / ".local" / "credentials.env"
    checkout = REPO_ROOT / ".local" / "credentials.env"
    return [here] if here.resolve() == checkout.resolve() else [here, checkout]


def _expanded(values: dict[str, str]) -> dict[str, str]:
    # The file says INCIDENT_TOKEN="$INCIDENT_TOKEN_PLATFORM_ADMIN", as a shell would read it.
    def expand(value: str) -> str:
        return _REFERENCE.sub(lambda m: values.get(m.group(1), os.environ.get(m.group(1), "")), value)

    return {name: expand(value) for name, value in values.items()}


def _file_values() -> tuple[dict[str, str], str]:
    for path in credential_files():
        if path.is_file():
            return _expanded(read_env_file(path)), str(path)
    return {}, ""


def role_variable(role: str) -> str:
    return "INCIDENT_TOKEN_" + role.upper().replace("-", "_")


def resolve(api_url: str | None = None, role: str | None = None) -> Target:
    """The API URL and token: flags, then the environment, then the credentials file."""
    variable = role_variable(role) if role else "INCIDENT_TOKEN"
    file_values, file_name = {}, ""
    if not (api_url or os.environ.get("INCIDENT_API_URL")) or not os.environ.get(variable):
        file_values, file_name = _file_values()
    url = api_url or os.environ.get("INCIDENT_API_URL") or file_values.get("INCIDENT_API_URL") or DEFAULT_API_URL
    if os.environ.get(variable):
        token, source = os.environ[variable], f"${variable}"
    elif file_values.get(variable):
        token, source = file_values[variable], f"{variable} in {file_name}"
    else:
        token, source = None, f"${variable}"
    return Target(api_url=url.rstrip("/"), token=token, token_from=source)
