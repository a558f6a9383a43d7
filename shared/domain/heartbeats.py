"""Heartbeats (dead man's switches) as data: what a ping and a deadline check do to one heartbeat.

A heartbeat is armed by its first ping (as in GoAlert and Grafana OnCall: a monitor
nobody has wired up yet is not an outage). After that, silence for longer than
``interval + grace`` is a missed beat: an alert opens an incident; the next ping
resolves it. The deadline is computed from the last ping and the configuration, so a
changed interval applies at once and a restarted service needs nothing but this state.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from .organisation import Heartbeat


class BeatState(BaseModel):
    """The heartbeat table's value for one heartbeat."""

    last_ping: datetime | None = None
    # When the missed beat was reported (an alert sent); None while the heartbeat is alive.
    missing_since: datetime | None = None


@dataclass(frozen=True)
class Missed:
    """The heartbeat went silent: report it (an alert that opens an incident)."""

    since: datetime  # the deadline that passed: when the beat became missing
    silent_for: timedelta  # from the last ping until the check noticed


@dataclass(frozen=True)
class Back:
    """A ping after a missed beat: the incident's alert resolves."""

    missing_since: datetime


def due(state: BeatState, beat: Heartbeat) -> datetime | None:
    """When the next check is due: never before the first ping, nor while a miss is reported."""
    if state.last_ping is None or state.missing_since is not None:
        return None
    return state.last_ping + beat.timeout


def on_ping(state: BeatState, at: datetime) -> tuple[BeatState, Back | None]:
    """A ping at ``at``; an older ping redelivered (or from a slower instance) changes nothing."""
    if state.last_ping is not None and at <= state.last_ping:
        return state, None
    back = Back(missing_since=state.missing_since) if state.missing_since is not None else None
    return BeatState(last_ping=at, missing_since=None), back


def on_check(state: BeatState, beat: Heartbeat, now: datetime) -> tuple[BeatState, Missed | None]:
    """A deadline check at ``now``: report the miss once, however often the check repeats."""
    deadline = due(state, beat)
    if deadline is None or now < deadline:
        return state, None
    assert state.last_ping is not None
    return state.model_copy(update={"missing_since": deadline}), Missed(since=deadline, silent_for=now - state.last_ping)


def describe_span(span: timedelta) -> str:
    """A silence as people say it: 45s, 5m, 1h30m, 2d3h (rounded down to its two largest units)."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


def missing_summary(name: str, missed: Missed) -> str:
    return f"heartbeat `{name}` missing for {describe_span(missed.silent_for)}"
