"""The public HTTP API as the console calls it: always with the signed-in user's own token."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx


class ApiRefusal(Exception):
    """The API answered 4xx/5xx (or not at all); ``message`` is its reason, shown to the user."""

    def __init__(self, status: int, message: str, fields: list[str] | None = None,
                 retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fields, self.retry_after = status, message, fields or [], retry_after


class CommandPending(ApiRefusal):
    """202: the API put the command on the broker but cannot say yet how it ended (its database is away)."""

    def __init__(self, incident_id: str) -> None:
        super().__init__(202, f"Accepted: the database is unavailable, so the command for {incident_id} is on its "
                              "way and will be applied; reload the incident once the database is back.")


def incident_path(incident_id: str, *rest: str) -> str:
    return "/".join(["/v1/incidents", quote(incident_id, safe=""), *(quote(part, safe="") for part in rest)])


def _refusal(response: httpx.Response) -> ApiRefusal:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = body.get("error") or response.reason_phrase or f"HTTP {response.status_code}"
    detail = body.get("detail")
    fields = [f"{d['field']}: {d.get('message', 'invalid')}" for d in detail or () if isinstance(d, dict) and "field" in d] \
        if isinstance(detail, list) else []
    if response.status_code == 503:
        # The API is there but something behind it is not (its database): say so, and when to retry.
        return ApiRefusal(503, message, fields, response.headers.get("retry-after"))
    status = response.status_code if response.status_code < 500 else 502
    return ApiRefusal(status, message, fields)


@dataclass
class UserApi:
    """The API on behalf of one user (their bearer token on every request)."""

    http: httpx.AsyncClient
    token: str

    async def request(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        try:
            response = await self.http.request(
                method, path, json=json, params=params, headers={"Authorization": f"Bearer {self.token}"}
            )
        except httpx.TimeoutException:
            raise ApiRefusal(504, "the API did not answer in time; try again") from None
        except httpx.HTTPError as exc:
            raise ApiRefusal(502, f"the API cannot be reached ({type(exc).__name__}); try again shortly") from None
        if response.status_code >= 400:
            raise _refusal(response)
        body = response.json()
        if response.status_code == 202 and isinstance(body, dict) and body.get("applied") is False:
            raise CommandPending(str(body.get("incident_id", "")))
        return body

    async def get(self, path: str, params: Any = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json=body if body is not None else {})

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, json=body)

    async def patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, json=body)

    async def visible(self, incident_id: str) -> bool:
        """Whether this user may see the incident (the API answers 404 for a restricted one)."""
        try:
            await self.get(incident_path(incident_id))
        except ApiRefusal as refusal:
            if refusal.status in (401, 403, 404):
                return False
            raise
        return True
