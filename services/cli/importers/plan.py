"""What an import would change in the organisation file, and what it cannot carry over (and why).

An importer translates another tool's REST API answers into sections of the organisation
file (people, teams, rotations, escalation policies, services); ``merge`` lays them over
the current file. Everything here is plain data in, data out: reading and writing files
is the command's job.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain.durations import format_duration

from ..render import table

SECTIONS = ("people", "teams", "rotations", "escalation_policies", "services")
KIND = {"people": "person", "teams": "team", "rotations": "rotation", "escalation_policies": "escalation policy",
        "services": "service"}
# Sections merged into what is there (a team keeps its webhook, a service its tier);
# the others are replaced whole, since the other tool's definition is the truth.
MERGED = ("teams", "services")


def slug(text: str) -> str:
    """A key usable everywhere a name goes here (YAML, URLs, Kafka topic names notifications.<team>)."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")
    return cleaned or "unnamed"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rotation(participants: list[str], length: timedelta, start: datetime, zone: str) -> dict:
    """A rotation as the organisation file writes it; the other tool's phase becomes start date and hand-off time."""
    local = start.astimezone(ZoneInfo(zone))
    return {"participants": participants, "length": format_duration(length), "handoff": f"{local:%H:%M}",
            "time_zone": zone, "start": local.date().isoformat(), "overrides": []}


@dataclass(frozen=True)
class Skipped:
    what: str  # e.g. schedule "Search On-Call" layer "Weekdays"
    reason: str


@dataclass
class Imported:
    """An importer's answer: sections keyed like the organisation file, with where each came from."""

    source: str  # "pagerduty" or "opsgenie"
    sections: dict[str, dict[str, dict]] = field(default_factory=lambda: {s: {} for s in SECTIONS})
    origins: dict[tuple[str, str], str] = field(default_factory=dict)  # (section, key) -> the name in the source
    skipped: list[Skipped] = field(default_factory=list)

    def put(self, section: str, key: str, value: dict, origin: str) -> None:
        self.sections[section][key] = value
        self.origins[(section, key)] = origin

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append(Skipped(what, reason))


@dataclass(frozen=True)
class Change:
    section: str
    key: str
    origin: str
    action: str  # add, update, unchanged


def unique_key(base: str, taken: set[str]) -> str:
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    taken.add(key)
    return key


def merge(current: dict[str, Any], imported: Imported) -> tuple[dict[str, Any], list[Change]]:
    """The organisation file with the import laid over it, and what changed. Merging the
    result again with the same import changes nothing (a re-run is idempotent)."""
    merged = copy.deepcopy(current)
    changes: list[Change] = []
    for section in SECTIONS:
        existing = merged.setdefault(section, {}) or {}
        merged[section] = existing
        for key, value in imported.sections[section].items():
            before = existing.get(key)
            after = {**(before or {}), **value} if section in MERGED and isinstance(before, dict) else value
            action = "add" if before is None else ("unchanged" if before == after else "update")
            existing[key] = after
            changes.append(Change(section, key, imported.origins[(section, key)], action))
    return merged, changes


def render(imported: Imported, changes: list[Change], target: str, applied: bool) -> str:
    rows = [(KIND[c.section], c.origin, f"{c.section}.{c.key}", c.action) for c in changes]
    lines = [f"Import from {imported.source} into {target}:", ""]
    lines += ["  " + line for line in table(("KIND", f"FROM ({imported.source})", "TO", "ACTION"), rows,
                                            widths={f"FROM ({imported.source})": 50}).splitlines()]
    lines += ["", f"Not carried over ({len(imported.skipped)}):"]
    lines += [f"  {s.what}: {s.reason}" for s in imported.skipped] or ["  nothing"]
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("add", "update", "unchanged")}
    summary = f"{counts['add']} to add, {counts['update']} to update, {counts['unchanged']} unchanged."
    if applied:
        summary = (f"Written: {counts['add']} added, {counts['update']} updated, {counts['unchanged']} unchanged "
                   f"(the file is rewritten without its comments).")
    else:
        summary += " Nothing written (--plan); --apply writes it."
    return "\n".join([*lines, "", summary])
