"""Background tasks a process cannot do without: one that ends ends the process.

A task that dies with an exception leaves a process that still answers /healthz and
/readyz while it no longer does its work (the API's listener for recorded incidents,
its liveness watchdog). Such a task is started with ``essential``: when it ends other
than by being cancelled, the process exits with UNHEALTHY after logging why, and its
supervisor starts a fresh one. A task meant to run forever that returns is a failure too.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Callable, Coroutine

from .kafka.liveness import UNHEALTHY

log = logging.getLogger("background")


def failure_of(task: asyncio.Task) -> str | None:
    """Why an ended task takes its process down, or None (it was cancelled: a clean stop)."""
    if task.cancelled():
        return None
    exc = task.exception()
    if exc is None:
        return f"background task {task.get_name()!r} returned, but it must run as long as the process"
    return f"background task {task.get_name()!r} failed: {type(exc).__name__}: {exc}"


def _exit(reason: str) -> None:
    log.critical("%s; exiting so that the supervisor restarts the process", reason)
    logging.shutdown()
    os._exit(UNHEALTHY)  # the event loop may be what is broken: leave without its cooperation


def essential(coro: Coroutine, name: str, on_failure: Callable[[str], None] = _exit) -> asyncio.Task:
    """Start ``coro`` as a task whose failure ends the process (``on_failure`` is for tests)."""
    task = asyncio.create_task(coro, name=name)

    def ended(done: asyncio.Task) -> None:
        reason = failure_of(done)
        if reason is not None:
            on_failure(reason)

    task.add_done_callback(ended)
    return task
