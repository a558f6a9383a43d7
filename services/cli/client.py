"""The HTTP API as incidentctl sees it: every failure becomes a CliError with a stable exit code."""
from __future__ import annotations

from enum import IntEnum
from typing import Any
from urllib.parse import quote

import httpx

from .config import Target


class Exit(IntEnum):
    """incidentctl's exit codes (listed in `incidentctl --help`; scripts rely on them)."""

    OK = 0
    ERROR = 1  # anything unexpected
    USAGE = 2  # bad arguments (argparse's own code)
    UNAUTHENTICATED = 3  # no token, or the API refused it (401)
    FORBIDDEN = 4  # the token's role may not do this (403)
    NOT_FOUND = 5  # no such incident, postmortem or action item (404)
    CONFLICT = 6  # the lifecycle forbids it in the incident's current state (409)
    INVALID = 7  # the API refused the input (400, 413)
    UNAVAILABLE = 8  # API unreachable, timed out, rate limited (429) or failing (5xx): retry later
    TAMPERED = 9  # export --verify: the audit chain is broken (the message names the first broken link)


EXIT_HELP = "\n".join(
    f"  {code.value}  {text}"
    for code, text in (
        (Exit.OK, "success"),
        (Exit.ERROR, "unexpected error"),
        (Exit.USAGE, "usage error (unknown command, missing or bad argument)"),
        (Exit.UNAUTHENTICATED, "no token, or the API refused it (invalid or revoked)"),
        (Exit.FORBIDDEN, "the token's role may not do this"),
        (Exit.NOT_FOUND, "no such incident (or postmortem, action item)"),
        (Exit.CONFLICT, "refused by the lifecycle (e.g. closing an incident that is not resolved)"),
        (Exit.INVALID, "the API refused the input (the message names the field)"),
        (Exit.UNAVAILABLE, "API unreachable, timed out, rate limited or failing: retry later"),
        (Exit.TAMPERED, "export --verify: the audit chain is broken (the first broken link is named)"),
    )
)

_BY_STATUS = {
    400: Exit.INVALID,
    401: Exit.UNAUTHENTICATED,
    403: Exit.FORBIDDEN,
    404: Exit.NOT_FOUND,
    405: Exit.ERROR,
    409: Exit.CONFLICT,
    413: Exit.INVALID,
    422: Exit.INVALID,
    429: Exit.UNAVAILABLE,
}


class CliError(Exception):
    def __init__(self, code: Exit, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def incident_path(incident_id: str, *rest: str) -> str:
    return "/".join(["/v1/incidents", quote(incident_id, safe=""), *(quote(part, safe="") for part in rest)])


def _field_hint(detail: Any) -> str | None:
    if isinstance(detail, list):
        parts = [f"{d.get('field')}: {d.get('message')}" for d in detail if isinstance(d, dict) and "field" in d]
        return "; ".join(parts) or None
    return None


class Api:
    def __init__(self, target: Target, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self._http = httpx.Client(base_url=target.api_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
                accept: str = "application/json") -> httpx.Response:
        if not self.target.token:
            raise CliError(Exit.UNAUTHENTICATED, f"no token: set {self.target.token_from.lstrip('$')}",
                           "export INCIDENT_TOKEN=..., or run `make up` to create .local/credentials.env")
        try:
            response = self._http.request(method, path, json=json, params=params, headers={"Accept": accept})
        except httpx.TimeoutException:
            raise CliError(Exit.UNAVAILABLE, f"the API at {self.target.api_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(Exit.UNAVAILABLE, f"cannot reach the API at {self.target.api_url}: {exc}",
                           "is the stack running (make up)? Set INCIDENT_API_URL to point elsewhere.") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> CliError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        message = body.get("error") or body.get("message") or response.reason_phrase or f"HTTP {status}"
        hint = _field_hint(body.get("detail"))
        if status == 401:
            hint = f"check the token ({self.target.token_from}); `incidentctl token create` makes a new one"
        elif status == 429 and response.headers.get("retry-after"):
            hint = f"retry after {response.headers['retry-after']} s"
        code = _BY_STATUS.get(status, Exit.UNAVAILABLE if status >= 500 else Exit.ERROR)
        return CliError(code, f"{message} (HTTP {status})", hint)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {}).json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body).json()

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).json()
