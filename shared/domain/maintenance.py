"""Maintenance windows: which incidents a window holds back from paging and notifying, and until when.

A window names services, label matchers, or both (every condition must hold), and a time
span. An incident opened by an alert inside a window (or reopened by a recurring alert in
one) is held: it is recorded as usual, but nobody is paged and no automatic notification
goes out. The hold lasts while windows cover the incident without a gap; when it ends,
an incident still triggered is paged as if it had just opened. A window never reaches
back before it was created, and a deleted window ends when it was deleted.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_CHAIN = 1000  # windows followed back to back (a bound, not a limit anyone meets)
AUTOMATIC_ACTORS = ("system", "escalation")
AUTOMATIC_PREFIXES = ("monitoring:", "integration:")


class LabelMatcher(BaseModel):
    """Like an Alertmanager silence matcher: ``name`` equals (or, with ``regex``, fully matches) ``value``;
    ``equal: false`` negates it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    value: str = Field(max_length=1000)
    regex: bool = False
    equal: bool = True

    @model_validator(mode="after")
    def _compiles(self) -> "LabelMatcher":
        if self.regex:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"value: not a regular expression: {exc}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        hit = re.fullmatch(self.value, actual) is not None if self.regex else actual == self.value
        return hit if self.equal else not hit


class MaintenanceWindow(BaseModel):
    """A window as stored (PostgreSQL) and published (compacted topic ``maintenance.windows``)."""

    model_config = ConfigDict(frozen=True)

    window_id: str
    services: list[str] = []
    matchers: list[LabelMatcher] = []
    start: datetime
    end: datetime
    reason: str = Field(min_length=1, max_length=2000)
    who: str  # who the window is for (the person doing the work), default the creator
    created_by: str
    created_at: datetime
    deleted_by: str | None = None
    deleted_at: datetime | None = None
    version: int = 1

    @field_validator("services")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _valid(self) -> "MaintenanceWindow":
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset (RFC 3339)")
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        if not self.services and not self.matchers:
            raise ValueError("a window names services, label matchers, or both")
        return self

    @property
    def effective_start(self) -> datetime:
        return max(self.start, self.created_at)

    @property
    def effective_end(self) -> datetime:
        return min(self.end, self.deleted_at) if self.deleted_at is not None else self.end

    def matches(self, subject: "Subject") -> bool:
        if self.services and subject.service not in self.services:
            return False
        return all(m.matches(subject.labels) for m in self.matchers)

    def covers(self, subject: "Subject", at: datetime) -> bool:
        return self.effective_start <= at < self.effective_end and self.matches(subject)


@dataclass(frozen=True)
class Subject:
    """What a window is matched against: the incident's service and its (first alert's) labels."""

    service: str
    labels: dict[str, str]


def covering(windows: Iterable[MaintenanceWindow], subject: Subject, at: datetime) -> MaintenanceWindow | None:
    """The window covering ``subject`` at ``at`` that lasts longest (None: no window does)."""
    found = [w for w in windows if w.covers(subject, at)]
    return max(found, key=lambda w: (w.effective_end, w.window_id)) if found else None


def hold_end(windows: Iterable[MaintenanceWindow], subject: Subject, since: datetime) -> datetime | None:
    """When a hold that began at ``since`` ends: windows followed back to back (None: not held at all)."""
    windows = list(windows)
    window = covering(windows, subject, since)
    if window is None:
        return None
    end = window.effective_end
    for _ in range(MAX_CHAIN):
        following = covering(windows, subject, end)
        if following is None:
            return end
        end = following.effective_end
    return end


def held(windows: Iterable[MaintenanceWindow], subject: Subject, since: datetime | None, at: datetime) -> bool:
    """Whether an incident held since ``since`` is still held at ``at``."""
    if since is None:
        return False
    end = hold_end(windows, subject, since)
    return end is not None and since <= at < end


def automatic(actor: str) -> bool:
    """A change nobody made by hand (monitoring, a timer, the escalation itself): held back in a window."""
    return actor in AUTOMATIC_ACTORS or actor.startswith(AUTOMATIC_PREFIXES)


def holds_opening(change: str, declared: bool, recurrence: bool) -> bool:
    """Only alerts are held: an incident opened by an alert, or reopened by a recurring one.
    One declared or reopened by a person is paged as usual."""
    return (change == "opened" and not declared) or (change == "reopened" and recurrence)
