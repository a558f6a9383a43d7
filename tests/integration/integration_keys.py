"""Integration keys made for a test, the way `incidentctl token create --role integration` makes them."""
from __future__ import annotations

import asyncio
import os

import asyncpg

from harness import remember_secret

from shared.auth import Role
from shared.db.tokens import create_token


def create_key(name: str, role: Role = Role.INTEGRATION) -> str:
    """A new secret for ``name`` (the token's name selects the integration's configuration)."""

    async def make() -> str:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            _, secret = await create_token(conn, role, name)
            return remember_secret(secret)
        finally:
            await conn.close()

    return asyncio.run(make())
