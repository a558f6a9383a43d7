"""Repeated log lines collapsed into a few lines and a count, in every service's log.

While the broker is away, aiokafka and Faust log each failed retry (an offset commit
refused with GroupLoadInProgressError, a connection refused, a produce error): about
100,000 lines in a 20 s outage, which buried the lines that say what happened. This
filter lets the first ``burst`` lines of a kind through within a ``window``, counts the
rest, and writes one line with the count when the window is over. A kind is the logger,
the level and the message with its numbers blurred (Faust often logs
f-strings that embed offsets and durations), so that distinct lines (each migration
applied, each dead letter's reason) stay distinct while a retry loop's lines are one kind.

Installed on the root logger's handlers (``install``): a filter on a logger would not
see the records of its children, where aiokafka and Faust log.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Callable

BURST = 3
WINDOW_SECONDS = 30.0
_NUMBERS = re.compile(r"\d+")
_KEY_CHARS = 160
_SCAN_SECONDS = 1.0  # how often ended windows are looked for: not on every record of a flood


def kind_of(record: logging.LogRecord) -> tuple[str, int, str]:
    """What makes two records "the same line": logger, level, and the message, numbers blurred."""
    return record.name, record.levelno, _NUMBERS.sub("#", _message(record))[:_KEY_CHARS]


@dataclass
class _Seen:
    since: float
    passed: int = 1
    suppressed: int = 0
    example: str = ""


class CollapseRepeats(logging.Filter):
    """A handler filter: ``filter`` says whether a record is written; summaries are written
    through ``emit`` (the handler's own ``handle``) when a kind's window is over."""

    def __init__(self, emit: Callable[[logging.LogRecord], object], burst: int = BURST,
                 window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._emit, self.burst, self.window, self._clock = emit, burst, window, clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self._summarising = False
        self._next_scan = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if self._summarising:
            return True  # our own summary line, on its way through the handler
        now = self._clock()
        self._summarise_ended(now)
        kind = kind_of(record)
        seen = self._seen.get(kind)
        if seen is None:
            self._seen[kind] = _Seen(since=now)
            return True
        if seen.passed < self.burst:
            seen.passed += 1
            # One traceback per kind and window is enough to say what failed.
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            if seen.passed == self.burst:
                self._write(record, f"the next line repeats ({self.burst} times within {self.window:.0f}s): "
                                    f"further lines like it are counted and summarised after {self.window:.0f}s")
            return True
        seen.suppressed += 1
        if not seen.example:
            seen.example = _message(record)
        return False

    def flush(self) -> None:
        """Write the summary of every kind whose window is over now (also done on the records
        that come through, at most once a second)."""
        self._next_scan = 0.0
        self._summarise_ended(self._clock())

    def _summarise_ended(self, now: float) -> None:
        if now < self._next_scan:
            return
        self._next_scan = now + _SCAN_SECONDS
        ended = [kind for kind, seen in self._seen.items() if now - seen.since >= self.window]
        for kind in ended:
            seen = self._seen.pop(kind)
            if seen.suppressed:
                name, level, _ = kind
                template = logging.LogRecord(name, level, "", 0, "", (), None)
                self._write(template, f"{seen.suppressed} more lines like this in {now - seen.since:.0f}s "
                                      f"(collapsed): {seen.example[:300]}")

    def _write(self, like: logging.LogRecord, message: str) -> None:
        record = logging.LogRecord(like.name, like.levelno, like.pathname, like.lineno, message, (), None,
                                   func=like.funcName)
        self._summarising = True
        try:
            self._emit(record)
        finally:
            self._summarising = False


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a badly formatted record is logging's to report, not ours
        return str(record.msg)


def install(root: logging.Logger | None = None, **options) -> None:
    """One collapsing filter on each handler of the root logger (again after a handler swap,
    as Faust's worker does when it sets up logging; a handler that has one keeps it)."""
    for handler in (root or logging.getLogger()).handlers:
        if not any(isinstance(f, CollapseRepeats) for f in handler.filters):
            handler.addFilter(CollapseRepeats(handler.handle, **options))
