"""The incident id format users know: INC-2025-09-29-001."""
from __future__ import annotations

import re
from datetime import date

INCIDENT_ID = re.compile(r"^INC-\d{4}-\d{2}-\d{2}-\d{3,}$")


def format_incident_id(day: date, number: int) -> str:
    if number < 1:
        raise ValueError("incident numbers start at 1")
    return f"INC-{day:%Y-%m-%d}-{number:03d}"
