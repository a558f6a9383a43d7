"""Which failures an agent retries (a dependency is away) and which dead-letter the message."""
from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
from pydantic import BaseModel, ValidationError

from shared.kafka.streams import transient


class _M(BaseModel):
    x: int


def _validation_error() -> ValidationError:
    try:
        _M.model_validate({"x": "nope"})
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize("exc", [
    KafkaConnectionError(), KafkaTimeoutError(), NotLeaderForPartitionError(), ConnectionRefusedError(),
    asyncpg.PostgresConnectionError("gone"), OSError("network"),
    # A restarting PostgreSQL: neither is a PostgresConnectionError to asyncpg.
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
])
def test_dependency_failures_are_retried(exc):
    assert transient(exc)


@pytest.mark.parametrize("exc", [
    MessageSizeTooLargeError(), ValueError("bad"), KeyError("x"), _validation_error(),
    asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
])
def test_message_failures_are_dead_lettered(exc):
    assert not transient(exc)
