"""The recorder waits out a database that is away, but not an asyncpg client that fails the same
way while PostgreSQL answers (services/recorder/writer.py): that is raised, so that the process
exits and is restarted, instead of retrying one batch for ever behind a green process."""
from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from services.recorder import writer as writer_module
from services.recorder.writer import CLIENT_ERRORS_BEFORE_ASKING, BatchWriter, ClientStuck

STUCK = asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


@pytest.fixture(autouse=True)
def _no_back_off(monkeypatch):
    monkeypatch.setattr(writer_module, "FIRST_RETRY", 0.0)
    monkeypatch.setattr(writer_module, "MAX_RETRY", 0.0)


def _writer(errors: list[BaseException], answers: bool) -> tuple[BatchWriter, dict]:
    seen = {"attempts": 0, "asked": 0}
    writer = BatchWriter(pool=None, refs_cap=10, dsn="postgresql://unused")

    async def attempt(items):
        seen["attempts"] += 1
        if errors:
            raise errors.pop(0)
        return []

    async def server_answers():
        seen["asked"] += 1
        return answers

    writer._attempt, writer.server_answers = attempt, server_answers
    return writer, seen


def test_client_errors_while_the_server_answers_are_raised_not_retried_for_ever():
    writer, seen = _writer([STUCK] * 100, answers=True)
    with pytest.raises(ClientStuck, match="InternalClientError .* while PostgreSQL answers"):
        asyncio.run(writer.write([]))
    assert seen == {"attempts": CLIENT_ERRORS_BEFORE_ASKING, "asked": 1}


def test_client_errors_while_the_server_is_away_are_an_outage_and_waited_out():
    writer, seen = _writer([STUCK] * (3 * CLIENT_ERRORS_BEFORE_ASKING + 2), answers=False)
    assert asyncio.run(writer.write([])) == []
    assert seen == {"attempts": 3 * CLIENT_ERRORS_BEFORE_ASKING + 3, "asked": 3}
    assert writer.outage_since is None  # back, and said so


def test_other_outage_errors_between_them_start_the_count_again():
    refused = ConnectionRefusedError(111, "refused")
    errors = ([STUCK] * (CLIENT_ERRORS_BEFORE_ASKING - 1) + [refused]) * 3
    writer, seen = _writer(errors, answers=True)
    assert asyncio.run(writer.write([])) == []
    assert seen["asked"] == 0


def test_a_server_that_refuses_connections_does_not_answer():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again below: nothing listens there
    writer = BatchWriter(pool=None, refs_cap=10, dsn=f"postgresql://nobody@127.0.0.1:{port}/none")
    assert asyncio.run(writer.server_answers()) is False
    assert asyncio.run(BatchWriter(pool=None, refs_cap=10).server_answers()) is False  # nobody to ask
