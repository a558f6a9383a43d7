"""Which database errors mean "PostgreSQL is away, try again" rather than "this row is refused"."""
from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions import _base

# A restarting or overloaded server: shutting down (57P01..57P03, CannotConnectNowError
# among them), out of connections or resources (53), a dropped connection (08), or a
# transaction the server rolled back for a conflict (40: deadlock, serialization).
_TRANSIENT_SERVER = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)


def unavailable(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed; False when the data itself is refused."""
    if isinstance(exc, _base.DataError):
        return False  # an argument the client cannot encode: the row, not the server
    if isinstance(exc, _TRANSIENT_SERVER):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return False  # constraint, type, range...: PostgreSQL refuses this data
    # The connection closed under us, could not be made, or timed out.
    return isinstance(exc, (asyncpg.InterfaceError, OSError, asyncio.TimeoutError, ConnectionError))
