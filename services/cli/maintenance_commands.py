"""incidentctl maintenance create|list|delete: windows in which alerts are recorded and nobody is paged."""
from __future__ import annotations

import argparse
import re
from urllib.parse import quote

from . import render
from .client import Api, CliError, Exit
from .commands import Result, _given
from .oncall_commands import TIME_HELP, moment

MATCH_HELP = "a label matcher: NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX (repeatable)"
_MATCHER = re.compile(r"^([^=!~]+)(=~|!~|!=|=)(.*)$")


def matcher(text: str) -> dict:
    found = _MATCHER.match(text.strip())
    if found is None:
        raise CliError(Exit.USAGE, f"{text!r} is not {MATCH_HELP.split(' (')[0]}")
    name, op, value = found.groups()
    return {"name": name.strip(), "value": value, "regex": "~" in op, "equal": not op.startswith("!")}


def _describe(matchers: list[dict]) -> str:
    ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    return ",".join(f"{m['name']}{ops[(m['regex'], m['equal'])]}{m['value']}" for m in matchers)


def windows_table(items: list[dict]) -> str:
    if not items:
        return "no maintenance windows"
    rows = [(w["window_id"], ",".join(w["services"]) or "-", _describe(w["matchers"]) or "-",
             render._when(w["start"]), render._when(w["end"]), w["who"],
             "deleted" if w.get("deleted_at") else ("active" if w.get("active") else "planned"), w["reason"])
            for w in items]
    return render.table(("ID", "SERVICES", "MATCHERS", "START", "END", "WHO", "STATE", "REASON"), rows,
                        widths={"SERVICES": 40, "MATCHERS": 40, "REASON": 40})


def create(api: Api, a: argparse.Namespace) -> Result:
    if not a.service and not a.match:
        raise CliError(Exit.USAGE, "a window needs --service or --match (or both)")
    body = _given(services=a.service or [], matchers=[matcher(m) for m in a.match or []], start=moment(a.start),
                  end=moment(a.end), reason=a.reason, who=a.who)
    window = api.post("/v1/maintenance", body)
    text = (f"maintenance window {window['window_id']} from {render._when(window['start'])} until "
            f"{render._when(window['end'])}: {window['reason']}")
    return Result(window, text)


def list_(api: Api, a: argparse.Namespace) -> Result:
    data = api.get("/v1/maintenance", params=_given(include_past=a.all or None, include_deleted=a.all or None))
    return Result(data, windows_table(data["windows"]))


def delete(api: Api, a: argparse.Namespace) -> Result:
    window = api.delete(f"/v1/maintenance/{quote(a.window, safe='')}")
    return Result(window, f"maintenance window {window['window_id']} ended (deleted by {window['deleted_by']})")


def add_parsers(sub, command) -> None:
    parent = sub.add_parser("maintenance", help="maintenance windows: alerts are recorded, nobody is paged")
    maintenance_sub = parent.add_subparsers(dest="maintenance_command", metavar="COMMAND", required=True)
    p = command(maintenance_sub, "create", create, "open a maintenance window", incident=False)
    p.add_argument("--service", action="append", help="a service the window covers (repeatable)")
    p.add_argument("--match", action="append", help=MATCH_HELP)
    p.add_argument("--start", default="now", help=f"when it begins (default now; {TIME_HELP})")
    p.add_argument("--end", required=True, help=f"when it ends ({TIME_HELP})")
    p.add_argument("--reason", required=True)
    p.add_argument("--who", help="the person doing the work (default: the token's name)")
    p = command(maintenance_sub, "list", list_, "current and planned windows", incident=False)
    p.add_argument("--all", action="store_true", help="past and deleted windows too")
    p = command(maintenance_sub, "delete", delete, "end a window now", incident=False)
    p.add_argument("window", metavar="ID", help="window id, e.g. mw_3f9a1c2b4d5e")
