"""Opsgenie's REST API answers (users, teams, schedules with rotations and overrides, escalations,
services) as sections of the organisation file.

The export is one JSON object holding the API's own answers:
``{"users": <GET /v2/users>, "teams": <GET /v2/teams>, "schedules": <GET /v2/schedules?expand=rotation>,
"overrides": {"<schedule id or name>": <GET /v2/schedules/{id}/overrides>}, "escalations":
<GET /v2/escalations>, "services": <GET /v1/services>}``.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.durations import format_duration

from .plan import Imported, rotation, slug, unique_key
from .plan import parse_time as _time

MAX_REPEAT = 10
LAST_LEVEL = timedelta(minutes=10)  # Opsgenie's last rule has no timeout of its own
_UNITS = {"minutes": 1, "hours": 60, "days": 1440}
_LENGTH = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}


def _data(export: dict, name: str) -> list[dict]:
    value = export.get(name) or []
    if isinstance(value, dict):
        value = value.get("data") or []
    return [item for item in value if isinstance(item, dict)]


def _minutes(delay: Any) -> int:
    if isinstance(delay, dict):
        return int(delay.get("timeAmount") or 0) * _UNITS.get(delay.get("timeUnit") or "minutes", 1)
    return int(delay or 0)


def translate(export: dict[str, Any], now: datetime, fallback_team: str) -> Imported:
    out = Imported(source="opsgenie")
    people: dict[str, str] = {}  # user id and username -> person key
    taken: set[str] = set()
    for user in _data(export, "users"):
        username = user.get("username") or ""
        key = unique_key(slug(username.split("@")[0] or user.get("fullName") or user["id"]), taken)
        people[user["id"]] = people[username] = key
        out.put("people", key, {"name": user.get("fullName") or key, **({"email": username} if "@" in username else {})},
                f"user {user.get('fullName') or username} <{username}>")
    teams: dict[str, str] = {}  # team id and name -> key
    for team in _data(export, "teams"):
        key = slug(team["name"])
        teams[team["id"]] = teams[team["name"]] = key
        out.put("teams", key, {"description": team.get("description") or team["name"]}, f"team {team['name']}")

    rotations = _schedules(export, out, people, teams, now)
    _escalations(export, out, people, teams, rotations)
    for service in _data(export, "services"):
        team = teams.get(service.get("teamId"))
        if team is None:
            out.skip(f"service {service['name']!r}", f"its team is not in the export: owned by the fallback team "
                                                     f"{fallback_team!r} until you say")
            team = fallback_team
        config = {"team": team, **({"description": service["description"]} if service.get("description") else {})}
        out.put("services", slug(service["name"]), config, f"service {service['name']}")
    return out


def _person(participant: dict, people: dict[str, str]) -> str | None:
    return people.get(participant.get("id")) or people.get(participant.get("username"))


def _schedules(export: dict, out: Imported, people: dict[str, str], teams: dict[str, str],
               now: datetime) -> dict[str, str]:
    """Each rotation of each schedule a rotation here; returns schedule id and name -> the first one's key."""
    chosen: dict[str, str] = {}
    overrides = export.get("overrides") or {}
    for schedule in _data(export, "schedules"):
        name, zone = schedule["name"], schedule.get("timezone") or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            out.skip(f"schedule {name!r}", f"unknown time zone {zone!r}")
            continue
        if not schedule.get("enabled", True):
            out.skip(f"schedule {name!r}", "disabled in Opsgenie: imported, and on call here")
        items = schedule.get("rotations") or []
        if len(items) > 1:
            out.skip(f"schedule {name!r}", f"{len(items)} rotations: each is a rotation of its own here; Opsgenie's "
                                           "combining them into one schedule is not carried over, and its team uses "
                                           "the first")
        keys: dict[str, str] = {}  # Opsgenie rotation id and name -> key
        for item in items:
            key = slug(name) if len(items) == 1 else f"{slug(name)}-{slug(item.get('name') or item['id'])}"
            rotation = _rotation(item, f"schedule {name!r} rotation {item.get('name')!r}", zone, people, out, now)
            if rotation is not None:
                keys[item.get("id", key)] = keys[item.get("name", key)] = key
                out.put("rotations", key, rotation, f"schedule {name} / {item.get('name')}")
        if not keys:
            continue
        first = next(iter(keys.values()))
        chosen[schedule["id"]] = chosen[name] = first
        answer = overrides.get(schedule["id"]) or overrides.get(name)
        _overrides(answer, f"schedule {name!r}", keys, people, out, now)
        owner = teams.get((schedule.get("ownerTeam") or {}).get("id")) or teams.get(
            (schedule.get("ownerTeam") or {}).get("name"))
        if owner is not None:
            out.sections["teams"][owner].setdefault("rotation", first)
    return chosen


def _rotation(item: dict, what: str, zone: str, people: dict[str, str], out: Imported, now: datetime) -> dict | None:
    if item.get("endDate") and _time(item["endDate"]) <= now:
        out.skip(what, "the rotation has ended")
        return None
    if item.get("timeRestriction"):
        out.skip(what, f"time restriction ({item['timeRestriction'].get('type', '?')}): a rotation here is on call "
                       "around the clock")
    participants = []
    for participant in item.get("participants") or []:
        key = _person(participant, people) if participant.get("type") == "user" else None
        if key is not None:
            participants.append(key)
        elif participant.get("type") == "none":
            out.skip(f"{what} participant", "a 'no one' slot: here somebody is always on call, so it is left out")
        else:
            out.skip(f"{what} participant {participant.get('name') or participant.get('username') or '?'}",
                     f"a {participant.get('type')} participant (only people rotate here)")
    if not participants:
        out.skip(what, "no participant could be carried over")
        return None
    unit = _LENGTH.get(item.get("type") or "weekly")
    if unit is None:
        out.skip(what, f"rotation type {item.get('type')!r} is not hourly, daily or weekly")
        return None
    return rotation(participants, unit * int(item.get("length") or 1), _time(item["startDate"]), zone)


def _overrides(answer: Any, what: str, keys: dict[str, str], people: dict[str, str], out: Imported,
               now: datetime) -> None:
    for override in _data({"o": answer}, "o") if answer else []:
        user = override.get("user") or {}
        label = f"{what} override {override.get('alias') or override.get('startDate')}"
        person = _person(user, people) if user.get("type", "user") == "user" else None
        if _time(override["endDate"]) <= now:
            out.skip(label, "already over")
            continue
        if person is None:
            out.skip(label, f"{user.get('username') or user.get('name') or 'its responder'} is not an exported user")
            continue
        named = [keys.get(r.get("id")) or keys.get(r.get("name")) for r in override.get("rotations") or []]
        for key in [k for k in named if k] or sorted(set(keys.values())):
            out.sections["rotations"][key]["overrides"].append(
                {"person": person, "start": override["startDate"], "end": override["endDate"]})


def _escalations(export: dict, out: Imported, people: dict[str, str], teams: dict[str, str],
                 rotations: dict[str, str]) -> None:
    for escalation in _data(export, "escalations"):
        name = escalation["name"]
        by_delay: dict[int, list[dict]] = {}
        for index, rule in enumerate(escalation.get("rules") or []):
            what = f"escalation {name!r} rule {index + 1}"
            target = _target(rule, what, people, teams, rotations, out)
            if target is not None:
                by_delay.setdefault(_minutes(rule.get("delay")), []).append(target)
        if not by_delay:
            out.skip(f"escalation {name!r}", "no rule could be carried over")
            continue
        # Opsgenie counts each rule's delay from the alert's creation; a level here waits from its own page.
        delays = sorted(by_delay)
        repeat = escalation.get("repeat") or {}
        last = timedelta(minutes=_minutes(repeat.get("waitInterval"))) or LAST_LEVEL
        if not repeat.get("waitInterval"):
            out.skip(f"escalation {name!r} last rule", f"Opsgenie gives it no timeout: {format_duration(LAST_LEVEL)} "
                                                      "here before the escalation is declared failed")
        levels = []
        for delay, following in zip(delays, [*delays[1:], None]):
            timeout = timedelta(minutes=following - delay) if following is not None else last
            levels.append({"timeout": format_duration(max(timeout, timedelta(minutes=1))), "targets": by_delay[delay]})
        count = int(repeat.get("count") or 0)
        if count > MAX_REPEAT:
            out.skip(f"escalation {name!r}", f"repeats {count} times: at most {MAX_REPEAT} here")
        key = slug(name)
        out.put("escalation_policies", key, {"levels": levels, "repeat": min(count, MAX_REPEAT)}, f"escalation {name}")
        owner = (escalation.get("ownerTeam") or {})
        team = teams.get(owner.get("id")) or teams.get(owner.get("name"))
        if team is not None:
            out.sections["teams"][team].setdefault("escalation_policy", key)


def _target(rule: dict, what: str, people: dict[str, str], teams: dict[str, str], rotations: dict[str, str],
            out: Imported) -> dict | None:
    if rule.get("condition") == "if-not-closed":
        out.skip(what, "'if not closed': here an escalation stops when somebody acknowledges")
    recipient, notify = rule.get("recipient") or {}, rule.get("notifyType") or "default"
    kind = recipient.get("type")
    if kind == "user" and _person(recipient, people):
        return {"type": "person", "person": _person(recipient, people)}
    if kind == "team" and (teams.get(recipient.get("id")) or teams.get(recipient.get("name"))):
        return {"type": "team_channel", "team": teams.get(recipient.get("id")) or teams[recipient["name"]]}
    if kind == "schedule":
        rotation = rotations.get(recipient.get("id")) or rotations.get(recipient.get("name"))
        positions = {"default": "primary", "next": "secondary"}
        if rotation and notify in positions:
            return {"type": "rotation", "rotation": rotation, "position": positions[notify]}
        if rotation:
            out.skip(what, f"notifies the {notify!r} on-call of {recipient.get('name')!r}: here a rotation target is "
                           "its primary or its secondary (next) only")
            return None
    out.skip(what, f"a {kind or 'recipient'} {recipient.get('name') or recipient.get('username') or ''} that is not "
                   "in the export".replace("  ", " "))
    return None
