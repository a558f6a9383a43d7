"""PagerDuty's REST API answers (users, teams, schedules with layers and overrides, escalation
policies, services) as sections of the organisation file.

The export is one JSON object holding the API's own answers:
``{"users": <GET /users>, "teams": <GET /teams>, "schedules": [<GET /schedules/{id}>, ...],
"overrides": {"<schedule id>": <GET /schedules/{id}/overrides>}, "escalation_policies":
<GET /escalation_policies>, "services": <GET /services>}``.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


from .plan import Imported, rotation, slug, unique_key
from .plan import parse_time as _time

MAX_REPEAT = 10


def _items(export: dict, name: str, inner: str | None = None) -> list[dict]:
    """A list endpoint's items, from its answer ({"users": [...], "more": ...}) or a bare list."""
    value = export.get(name) or []
    if isinstance(value, dict):
        value = value.get(inner or name) or []
    return [item for item in value if isinstance(item, dict)]


def translate(export: dict[str, Any], now: datetime, fallback_team: str) -> Imported:
    out = Imported(source="pagerduty")
    people: dict[str, str] = {}  # PagerDuty user id -> person key
    taken: set[str] = set()
    for user in _items(export, "users"):
        email = user.get("email") or ""
        key = unique_key(slug(email.split("@")[0] or user.get("name") or user["id"]), taken)
        people[user["id"]] = key
        out.put("people", key, {"name": user.get("name") or key, **({"email": email} if email else {})},
                f"user {user.get('name') or user['id']} <{email}>")
        if user.get("contact_methods") or user.get("notification_rules"):
            out.skip(f"user {user.get('name')}", "contact methods and notification rules: people are paged through "
                                                 "their team's topic and webhook here")
    teams: dict[str, str] = {}
    for team in _items(export, "teams"):
        key = slug(team["name"])
        teams[team["id"]] = key
        out.put("teams", key, {"description": team.get("description") or team["name"]}, f"team {team['name']}")

    schedules = _schedules(export, out, people, now)
    policies = _policies(export, out, people, teams, schedules)
    for team_id, key in teams.items():  # a team with a schedule of its own but no policy in the export
        if f"team:{team_id}" in schedules:
            out.sections["teams"][key].setdefault("rotation", schedules[f"team:{team_id}"])
    _services(export, out, teams, policies, fallback_team)
    return out


def _schedules(export: dict, out: Imported, people: dict[str, str], now: datetime) -> dict[str, str]:
    """Each layer a rotation; returns schedule id -> the rotation its teams use (the first layer carried)."""
    chosen: dict[str, str] = {}
    overrides = export.get("overrides") or {}
    for answer in _items(export, "schedules"):
        schedule = answer.get("schedule", answer)
        name, zone = schedule["name"], schedule.get("time_zone") or "UTC"
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            out.skip(f"schedule {name!r}", f"unknown time zone {zone!r}")
            continue
        layers = schedule.get("schedule_layers") or []
        if len(layers) > 1:
            out.skip(f"schedule {name!r}", f"{len(layers)} layers: each is a rotation of its own here; the layering "
                                           "(a higher layer covering a lower one) is not carried over, and its teams "
                                           "use the first layer")
        keys = []
        for layer in layers:
            key = slug(name) if len(layers) == 1 else f"{slug(name)}-{slug(layer.get('name') or layer['id'])}"
            rotation = _rotation(layer, f"schedule {name!r} layer {layer.get('name')!r}", zone, people, out, now)
            if rotation is None:
                continue
            keys.append(key)
            out.put("rotations", key, rotation, f"schedule {name} / {layer.get('name') or layer['id']}")
        if not keys:
            continue
        chosen[schedule["id"]] = keys[0]
        made = _overrides(overrides.get(schedule["id"]), f"schedule {name!r}", people, out, now)
        for key in keys:
            out.sections["rotations"][key]["overrides"] = made
        for team in schedule.get("teams") or []:
            chosen.setdefault(f"team:{team['id']}", keys[0])
    return chosen


def _rotation(layer: dict, what: str, zone: str, people: dict[str, str], out: Imported, now: datetime) -> dict | None:
    if layer.get("end") and _time(layer["end"]) <= now:
        out.skip(what, "the layer has ended")
        return None
    if layer.get("restrictions"):
        kinds = ", ".join(sorted({r.get("type", "?") for r in layer["restrictions"]}))
        out.skip(what, f"restrictions ({kinds}): a rotation here is on call around the clock, so the layer's "
                       "off hours are on call too")
    participants = []
    for entry in layer.get("users") or []:
        user = entry.get("user", entry)
        if user.get("id") in people:
            participants.append(people[user["id"]])
        else:
            out.skip(f"{what} user {user.get('summary') or user.get('id')}", "not among the exported users")
    if not participants:
        out.skip(what, "no participant could be carried over")
        return None
    length = timedelta(seconds=int(layer["rotation_turn_length_seconds"]))
    return rotation(participants, length, _time(layer["rotation_virtual_start"]), zone)


def _overrides(answer: Any, what: str, people: dict[str, str], out: Imported, now: datetime) -> list[dict]:
    made = []
    items = answer.get("overrides", []) if isinstance(answer, dict) else (answer or [])
    for override in items:
        user = override.get("user") or {}
        label = f"{what} override {override.get('start')} to {override.get('end')}"
        if _time(override["end"]) <= now:
            out.skip(label, "already over")
        elif user.get("id") not in people:
            out.skip(label, f"user {user.get('summary') or user.get('id')} is not among the exported users")
        else:
            made.append({"person": people[user["id"]], "start": override["start"], "end": override["end"]})
    return made


def _policies(export: dict, out: Imported, people: dict[str, str], teams: dict[str, str],
              schedules: dict[str, str]) -> dict[str, str]:
    """Each escalation policy; returns policy id -> key (and sets its teams' policy and rotation)."""
    keys: dict[str, str] = {}
    for policy in _items(export, "escalation_policies"):
        name = policy["name"]
        levels = []
        for index, rule in enumerate(policy.get("escalation_rules") or []):
            what = f"escalation policy {name!r} rule {index + 1}"
            if rule.get("escalation_rule_assignment_strategy") == "round_robin":
                out.skip(what, "round-robin assignment: here every target of a level is paged")
            targets = []
            for target in rule.get("targets") or []:
                kind = target.get("type", "")
                if kind.startswith("user") and target.get("id") in people:
                    targets.append({"type": "person", "person": people[target["id"]]})
                elif kind.startswith("schedule") and target.get("id") in schedules:
                    targets.append({"type": "rotation", "rotation": schedules[target["id"]], "position": "primary"})
                else:
                    out.skip(f"{what} target {target.get('summary') or target.get('id')}",
                             f"a {kind or 'target'} that is not in the export")
            if not targets:
                out.skip(what, "no target could be carried over: the level is left out")
                continue
            minutes = max(1, int(rule.get("escalation_delay_in_minutes") or 1))
            levels.append({"timeout": f"{minutes}m", "targets": targets})
        if not levels:
            out.skip(f"escalation policy {name!r}", "no level could be carried over")
            continue
        repeat = int(policy.get("num_loops") or 0)
        if repeat > MAX_REPEAT:
            out.skip(f"escalation policy {name!r}", f"repeats {repeat} times: at most {MAX_REPEAT} here")
        key = slug(name)
        keys[policy["id"]] = key
        out.put("escalation_policies", key, {"levels": levels, "repeat": min(repeat, MAX_REPEAT)},
                f"escalation policy {name}")
        for team in policy.get("teams") or []:
            team_key = teams.get(team.get("id"))
            if team_key is None:
                continue
            config = out.sections["teams"][team_key]
            config.setdefault("escalation_policy", key)
            rotation = schedules.get(f"team:{team['id']}") or next(
                (t["rotation"] for level in levels for t in level["targets"] if t["type"] == "rotation"), None)
            if rotation:
                config.setdefault("rotation", rotation)
    return keys


def _services(export: dict, out: Imported, teams: dict[str, str], policies: dict[str, str],
              fallback_team: str) -> None:
    for service in _items(export, "services"):
        name = service["name"]
        team = next((teams[t["id"]] for t in service.get("teams") or [] if t.get("id") in teams), None)
        policy_ref = (service.get("escalation_policy") or {}).get("id")
        policy = policies.get(policy_ref)
        if policy_ref and policy is None:
            out.skip(f"service {name!r} escalation policy {policy_ref}", "not in the export (or not carried over): "
                                                                         "the team's policy applies")
        if team is None:
            team = next((key for key, config in out.sections["teams"].items()
                         if policy and config.get("escalation_policy") == policy), None)
        if team is None:
            out.skip(f"service {name!r}", f"no team: owned by the fallback team {fallback_team!r} until you say")
            team = fallback_team
        config = {"team": team, **({"escalation_policy": policy} if policy else {})}
        if service.get("description"):
            config["description"] = service["description"]
        out.put("services", slug(name), config, f"service {name}")
        urgency = (service.get("incident_urgency_rule") or {}).get("type")
        if urgency and urgency != "constant":
            out.skip(f"service {name!r}", f"urgency rule {urgency!r} and support hours: severity comes from the "
                                          "severity rules here")
        if service.get("integrations"):
            out.skip(f"service {name!r} integrations", "keys are secrets PagerDuty keeps: make one per sender with "
                                                       "`incidentctl token create --role integration --name NAME` "
                                                       "and point it at /v2/enqueue")
