"""An essential background task that ends, other than by being cancelled, ends its process."""
from __future__ import annotations

import asyncio

import asyncpg

from shared.background import essential


def _run(coro_factory, cancel: bool = False) -> list[str]:
    failures: list[str] = []

    async def go():
        task = essential(coro_factory(), "recorded listener", failures.append)
        if cancel:
            await asyncio.sleep(0)  # let it start
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop

    asyncio.run(go())
    return failures


def test_a_task_that_fails_is_reported_with_its_error():
    async def dies():
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    [reason] = _run(dies)
    assert "recorded listener" in reason and "CannotConnectNowError" in reason and "starting up" in reason


def test_a_task_meant_to_run_forever_that_returns_is_a_failure():
    async def returns():
        return None

    [reason] = _run(returns)
    assert "returned" in reason


def test_a_cancelled_task_is_a_clean_stop():
    async def forever():
        await asyncio.Event().wait()

    assert _run(forever, cancel=True) == []
