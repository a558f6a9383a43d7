"""Human durations in configuration ("90s", "5m", "72h", "30d") as timedelta."""
from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse "1h30m"-style text; a bare number means seconds."""
    try:
        return _parse(text)
    except OverflowError:
        # timedelta's own limit (about 2.7 million years), or an infinite float: a value, not a crash.
        raise ValueError(f"not a duration: {text!r} is too long (at most 999999999 days)") from None


def _parse(text: str | int | float | timedelta) -> timedelta:
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration")
    if cleaned.replace(".", "", 1).isdigit():
        return timedelta(seconds=float(cleaned))
    total = timedelta()
    position = 0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(f"not a duration: {text!r} (use forms like 30s, 5m, 72h, 30d)")
    return total


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"
