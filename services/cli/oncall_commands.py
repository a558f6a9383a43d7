"""incidentctl oncall, its overrides and calendar feeds: who is on call, until when, who is next."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from urllib.parse import quote

from shared.domain.durations import parse_duration

from . import render
from .client import Api, CliError, Exit
from .commands import Result, _given

TIME_HELP = "RFC 3339 (2026-12-24T09:00:00Z; without an offset it is UTC), now, or +DURATION from now (+8h, +2d)"


def moment(text: str, now: datetime | None = None) -> str:
    """A time as the API wants it (RFC 3339 with an offset)."""
    now = now or datetime.now(timezone.utc)
    value = text.strip()
    if value == "now":
        return now.isoformat()
    if value.startswith("+"):
        try:
            return (now + parse_duration(value[1:])).isoformat()
        except ValueError as exc:
            raise CliError(Exit.USAGE, f"{text!r}: {exc}") from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(Exit.USAGE, f"{text!r} is not a time ({TIME_HELP})") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).isoformat()


def oncall_table(rows: list[dict]) -> str:
    if not rows:
        return "no rotations"
    body = [
        (r.get("team"), r["rotation"], r["primary"] + (" (override)" if r.get("override") else ""),
         render._when(r.get("until")), r.get("next"), r.get("secondary"))
        for r in rows
    ]
    return render.table(("TEAM", "ROTATION", "ON CALL", "UNTIL", "NEXT", "SECONDARY"), body)


def overrides_table(items: list[dict]) -> str:
    if not items:
        return "no overrides"
    body = [(o["override_id"], o["rotation"], o["person"], render._when(o["start"]), render._when(o["end"]),
             o.get("created_by"), "deleted" if o.get("deleted_at") else "", o.get("reason")) for o in items]
    return render.table(("ID", "ROTATION", "PERSON", "START", "END", "BY", "STATE", "REASON"), body,
                        widths={"REASON": 40})


def show(api: Api, a: argparse.Namespace) -> Result:
    data = api.get("/v1/oncall", params=_given(at=moment(a.at) if a.at else None))
    return Result(data, oncall_table(data["oncall"]))


def override(api: Api, a: argparse.Namespace) -> Result:
    if a.list:
        data = api.get("/v1/oncall/overrides", params=_given(rotation=a.rotation, include_past=a.all or None,
                                                              include_deleted=a.all or None))
        return Result(data, overrides_table(data["overrides"]))
    if a.delete:
        deleted = api.delete(f"/v1/oncall/overrides/{quote(a.delete, safe='')}")
        return Result(deleted, f"override {deleted['override_id']} deleted")
    missing = [f"--{name}" for name in ("rotation", "person", "start", "end") if getattr(a, name) is None]
    if missing:
        raise CliError(Exit.USAGE, f"an override needs {', '.join(missing)} (or use --list, --delete ID)")
    body = _given(rotation=a.rotation, person=a.person, start=moment(a.start), end=moment(a.end), reason=a.reason)
    made = api.post("/v1/oncall/overrides", body)
    text = (f"override {made['override_id']}: {made['person']} is on call for {made['rotation']} "
            f"from {render._when(made['start'])} until {render._when(made['end'])}")
    return Result(made, text)


def feed(api: Api, a: argparse.Namespace) -> Result:
    if a.list:
        data = api.get("/v1/feed-tokens", params=_given(include_revoked=a.all or None))
        rows = [(t["token_id"], t["scope"]["kind"], t["scope"]["name"], t["name"], t["created_by"],
                 "revoked" if t.get("revoked_at") else "") for t in data["feed_tokens"]]
        text = render.table(("ID", "FEED", "OF", "NAME", "BY", "STATE"), rows) if rows else "no feed tokens"
        return Result(data, text)
    if a.revoke:
        revoked = api.delete(f"/v1/feed-tokens/{quote(a.revoke, safe='')}")
        return Result(revoked, f"feed token {revoked['token_id']} revoked: its URL no longer works")
    if (a.rotation is None) == (a.person is None):
        raise CliError(Exit.USAGE, "a feed is of one --rotation or one --person (or use --list, --revoke ID)")
    made = api.post("/v1/feed-tokens", _given(rotation=a.rotation, person=a.person, name=a.name))
    note = (f"feed token {made['token_id']} for the {made['scope']['kind']} {made['scope']['name']!r}; "
            "subscribe to the URL in a calendar app (it is shown only this once)")
    return Result(made, made["url"], note=note)


def add_parsers(sub, command) -> None:
    """``incidentctl oncall [--at T]`` and ``incidentctl oncall override ...``."""
    p = command(sub, "oncall", show, "who is on call now for each team and rotation, until when, and who is next",
                incident=False)
    p.add_argument("--at", help=f"another moment ({TIME_HELP})")
    oncall_sub = p.add_subparsers(dest="oncall_command", metavar="COMMAND")
    o = command(oncall_sub, "override", override,
                "create an override (--rotation --person --start --end), or --list, or --delete ID", incident=False)
    o.add_argument("--rotation")
    o.add_argument("--person")
    o.add_argument("--start", help=TIME_HELP)
    o.add_argument("--end", help=TIME_HELP)
    o.add_argument("--reason")
    o.add_argument("--list", action="store_true", help="list the overrides still ahead (with --rotation: of one)")
    o.add_argument("--all", action="store_true", help="with --list: past and deleted ones too")
    o.add_argument("--delete", metavar="ID", help="delete the override ID")
    f = command(oncall_sub, "feed", feed,
                "a calendar feed URL (--rotation R or --person P), or --list, or --revoke ID", incident=False)
    f.add_argument("--rotation")
    f.add_argument("--person")
    f.add_argument("--name", help="what the token is for (shown in --list)")
    f.add_argument("--list", action="store_true", help="list the feed tokens (never their secrets)")
    f.add_argument("--all", action="store_true", help="with --list: revoked ones too")
    f.add_argument("--revoke", metavar="ID", help="revoke the feed token ID")
