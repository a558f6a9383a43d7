"""How the recorder sorts a database error: wait and retry, refuse the row, or stop.

- ``unavailable``: PostgreSQL is away or busy; the same work can succeed later.
- ``refused``: this data cannot be stored (PostgreSQL's data exceptions and constraint
  violations, an argument the client cannot encode, a message our code cannot turn into
  rows); it goes to the dead-letter topic alone.
- anything else (a missing table, a missing privilege...) is neither: the deployment is
  wrong, and the recorder stops so that its supervisor restarts it, loudly, instead of
  dead-lettering every message while it lasts.
"""
from __future__ import annotations

import asyncio

import asyncpg
from asyncpg.exceptions import _base

# A restarting or overloaded server: shutting down (57P01..57P03, CannotConnectNowError
# among them), out of connections or resources (53), a dropped connection (08), a
# transaction the server rolled back for a conflict (40: deadlock, serialization), or a
# server that became a read-only standby (25006: a failover under way).
_TRANSIENT_SERVER = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)
# What PostgreSQL says about the data itself (classes 22 and 23).
_REFUSED_SERVER = (asyncpg.exceptions.DataError, asyncpg.exceptions.IntegrityConstraintViolationError)


def unavailable(exc: BaseException) -> bool:
    """True when retrying the same work later can succeed."""
    if isinstance(exc, _base.DataError):
        return False  # an argument the client cannot encode: the row, not the server
    if isinstance(exc, _TRANSIENT_SERVER):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return False
    # The connection closed under us, could not be made, or timed out. InternalClientError
    # ("cannot switch to state 12; another operation is in progress") is what asyncpg raises
    # for a query on a connection the server terminated under it (a fast shutdown; seen in
    # tests/integration/test_fault_postgres.py; MagicStack/asyncpg#1069): the pool
    # terminates that connection on release, so the next attempt gets a fresh one.
    return isinstance(exc, (asyncpg.InterfaceError, _base.InternalClientError, OSError, asyncio.TimeoutError,
                            ConnectionError))


def refused(exc: BaseException) -> bool:
    """True when this data, not the database or the deployment, is the problem."""
    if unavailable(exc):
        return False
    if isinstance(exc, (_base.DataError, *_REFUSED_SERVER)):
        return True
    return not isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError))
