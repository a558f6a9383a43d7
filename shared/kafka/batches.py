"""Agents that work in batches: one confirmation of outputs and one table write per key
per batch, instead of one of each per message (architecture.md, "The hot path").

``batch_agent`` hands ``handle(events)`` up to ``size`` events at a time, gathered for
at most ``within`` seconds (Faust's ``take_events``). The handler sends its outputs
through an ``Outbox``, confirms them, and only then writes its tables: output before
state, as for single events (streams.Outbox). A dependency away (broker, database)
retries the whole batch, which every handler recognises as redelivery; a batch that
fails otherwise is handled again one event at a time, so that only the poison message
goes to the dead-letter topic, with its reason, and the rest are processed.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import contextmanager
from typing import Awaitable, Callable, Sequence

import faust
from faust.streams import _current_event

from . import faust_fixes
from .liveness import ACTIVITY, DEPENDENCY_WAITS
from .streams import dead_letter, describe_error, transient

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence], Awaitable[None]]


@contextmanager
def acting_for(event):
    """Table writes inside land on ``event``'s partition (Faust takes the partition of the
    event being processed; in a batch that is whichever came last)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def write(table, event, key, value) -> None:
    """``table[key] = value`` on the changelog partition of ``event`` (the key's own)."""
    with acting_for(event):
        table[key] = value


async def process_batch(events: Sequence, handle: BatchHandler, dead_letter_topic, service: str,
                        retry_seconds: float = 1.0) -> None:
    while True:
        try:
            await handle(events)
            return
        except Exception as exc:  # noqa: BLE001 - sorted below: a dependency, or poison
            if transient(exc):
                log.warning("%s: dependency unavailable (%s); retrying the batch of %d", service, exc, len(events))
                with DEPENDENCY_WAITS.watch(f"retrying after {type(exc).__name__}"):
                    await asyncio.sleep(retry_seconds)
                continue
            if len(events) == 1:
                log.exception("%s: failed to process a message", service)
                event = events[0]
                if event.message.topic != dead_letter_topic.get_topic_name():
                    await dead_letter(dead_letter_topic, event, f"processing failed: {describe_error(exc)}", service)
                return
            log.warning("%s: a batch of %d failed (%s); handling them one by one", service, len(events),
                        describe_error(exc))
            for event in events:
                await process_batch([event], handle, dead_letter_topic, service, retry_seconds)
            return


def batch_agent(app: faust.App, channel, handle: BatchHandler, dead_letter_topic, service: str,
                size: int = 500, within: float = 0.02):
    """An agent (concurrency 1) that runs ``handle(events)`` on batches of its channel."""

    async def agent(stream):
        ACTIVITY.waiting(name)  # the time between batches is the watchdog's evidence (liveness.Progress)
        async for events in stream.take_events(size, within):
            ACTIVITY.working(name)
            # In offset order per partition, or not yet (faust_fixes.admit rewinds).
            admitted = [event for event in events if faust_fixes.admit(app.consumer, event.message)]
            if admitted:
                await process_batch(admitted, handle, dead_letter_topic, service)
            for event in admitted:
                faust_fixes.handled(event.message)
            ACTIVITY.waiting(name)

    agent.__doc__ = handle.__doc__
    name = f"{service}.{handle.__name__}"
    faust_fixes.guard_topics(channel, name)
    return app.agent(channel, name=name, concurrency=1)(agent)
