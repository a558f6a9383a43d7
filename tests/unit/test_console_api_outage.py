"""How the console reads the API's answers while its database is away: a 503 stays a 503 with
its Retry-After, a command put on the broker (202) is told as accepted, other 5xx are a 502."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from services.web.api import ApiRefusal, CommandPending, UserApi


def _api(status: int, body: dict, headers: dict | None = None) -> UserApi:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return UserApi(httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://api"), "t")


def _refusal(api: UserApi, method: str = "GET") -> ApiRefusal:
    with pytest.raises(ApiRefusal) as caught:
        asyncio.run(api.request(method, "/v1/incidents"))
    return caught.value


def test_the_database_unavailable_stays_a_503_with_its_retry_after():
    refusal = _refusal(_api(503, {"error": "the database is unavailable: retry shortly", "detail": None},
                            {"Retry-After": "5"}))
    assert (refusal.status, refusal.retry_after) == (503, "5")
    assert "database is unavailable" in refusal.message


def test_a_server_error_of_the_api_is_a_bad_gateway():
    refusal = _refusal(_api(500, {"error": "internal error", "detail": None}))
    assert refusal.status == 502 and refusal.retry_after is None


def test_a_command_accepted_but_not_applied_is_told_as_accepted():
    refusal = _refusal(_api(202, {"status": "accepted", "applied": False, "incident_id": "INC-2026-03-02-001",
                                  "command_id": "c1"}), "POST")
    assert isinstance(refusal, CommandPending) and refusal.status == 202
    assert "INC-2026-03-02-001" in refusal.message and "database is unavailable" in refusal.message


def test_an_ordinary_202_is_an_answer():
    body = {"status": "accepted", "dedup_keys": ["k"]}
    assert asyncio.run(_api(202, body).request("POST", "/v1/alerts")) == body
