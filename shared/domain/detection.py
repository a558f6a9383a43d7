"""When a problem counts as detected: the alert's own start, within limits it cannot game.

MTTR runs from detection. A source's ``starts_at`` is trusted only so far: never later
than our receipt (a skewed clock), and never more than the organisation's
``max_alert_age`` before it (a replayed or misconfigured alert from last month would
otherwise put a month on the incident's MTTR). A start older than that counts as
``received_at - max_alert_age``, and the start given is kept beside it
(``detected_at_clamped``) so the clamping is visible, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_MAX_ALERT_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class Detection:
    at: datetime
    # The source's starts_at when it was older than max_alert_age (``at`` is then the limit).
    clamped_from: datetime | None = None


def detection_of(starts_at: datetime | None, received_at: datetime, max_age: timedelta) -> Detection:
    if starts_at is None or starts_at >= received_at:
        return Detection(received_at)
    earliest = received_at - max_age
    if starts_at < earliest:
        return Detection(earliest, clamped_from=starts_at)
    return Detection(starts_at)
