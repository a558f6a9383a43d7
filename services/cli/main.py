"""incidentctl: the incident API from a terminal or a script."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from . import commands as cmd
from . import import_command, maintenance_commands, oncall_commands, token_commands
from .client import EXIT_HELP, Api, CliError, Exit
from .config import resolve
from .render import dump

ROLES = ("platform-admin", "observability-engineer", "security-admin", "compliance-officer", "integration")
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
STATUSES = ("triggered", "acknowledged", "mitigating", "resolved", "closed")
PRIORITIES = ("P1", "P2", "P3", "P4")
ITEM_STATUSES = ("open", "in_progress", "done", "cancelled")

DESCRIPTION = """\
Work with incidents from a terminal or a script.

The API and the token come from INCIDENT_API_URL and INCIDENT_TOKEN, else from
.local/credentials.env (written by `make up`; INCIDENT_CREDENTIALS names another
file). --as ROLE uses INCIDENT_TOKEN_<ROLE> instead, e.g. --as compliance-officer.
"""
EPILOG = f"""\
examples:
  incidentctl list --status triggered
  incidentctl show INC-2026-11-27-001 -o yaml
  incidentctl ack INC-2026-11-27-001 --note "on it"
  incidentctl close INC-2026-11-27-001 --verification "error rate normal for 1h"
  incidentctl postmortem action-item add INC-2026-11-27-001 --title "Alert on queue depth" --owner alice
  TOKEN=$(incidentctl token create --role observability-engineer --name grafana-bot --expires +90d)
  incidentctl token list
  incidentctl export INC-2026-11-27-001 --verify
  incidentctl oncall
  incidentctl oncall override --rotation payments-oncall --person erin --start now --end +8h --reason "swap"
  incidentctl maintenance create --service checkout-api --end +2h --reason "database upgrade"
  incidentctl import pagerduty pagerduty-export.json --plan

exit codes:
{EXIT_HELP}
"""


def _output(parser: argparse.ArgumentParser, default: str = "table", choices=("table", "json", "yaml")) -> None:
    parser.add_argument("-o", "--output", choices=choices, default=default,
                        help=f"output format (default: {default})")


def _command(sub, name: str, handler: Callable, help_text: str, *, incident: bool = True,
             output: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    if incident:
        parser.add_argument("id", metavar="ID", help="incident id, e.g. INC-2026-11-27-001")
    if output:
        _output(parser)
    parser.set_defaults(handler=handler)
    return parser


def _incident_commands(sub) -> None:
    p = _command(sub, "declare", cmd.declare, "declare an incident by hand", incident=False)
    p.add_argument("--title", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--category", choices=("operational", "security", "data-integrity"))
    p.add_argument("--impact")
    p.add_argument("--commander")

    p = _command(sub, "list", cmd.list_, "list incidents, newest first", incident=False)
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--service")
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--team")
    p.add_argument("--limit", type=int, default=100)

    _command(sub, "show", cmd.show, "one incident; -o yaml gives the incident record, -o json everything")
    _command(sub, "ack", cmd.ack, "acknowledge (stops the escalation)").add_argument("--note")
    _command(sub, "update", cmd.update, "post a status update (communication log)").add_argument("message")
    p = _command(sub, "mitigate", cmd.mitigate, "record a mitigation step")
    p.add_argument("description")
    p.add_argument("--step", type=int, help="the playbook step this completes (0-based)")
    p = _command(sub, "evidence", cmd.evidence, "attach evidence: a link, a text or a file's content")
    p.add_argument("--title", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--url")
    source.add_argument("--text")
    source.add_argument("--file", help="a text file whose content is attached")
    p.add_argument("--media-type", dest="media_type")
    p = _command(sub, "severity", cmd.severity, "change the severity, with a reason")
    p.add_argument("severity", choices=SEVERITIES)
    p.add_argument("--reason", required=True)
    p = _command(sub, "commander", cmd.commander, "hand the incident to another commander")
    p.add_argument("name")
    p.add_argument("--reason")
    _command(sub, "resolve", cmd.resolve, "resolve (creates the postmortem draft when required)").add_argument("--note")
    _command(sub, "close", cmd.close, "close a resolved incident").add_argument(
        "--verification", "-m", required=True, help="how the resolution was verified")
    _command(sub, "reopen", cmd.reopen, "reopen a resolved or closed incident").add_argument("--reason", required=True)
    p = _command(sub, "export", cmd.export, "the compliance bundle (JSON, or YAML with -o yaml)", output=False)
    _output(p, default="json", choices=("json", "yaml"))
    p.add_argument("--file", help="write the bundle to this file instead of stdout (with --verify: check this file)")
    p.add_argument("--verify", action="store_true",
                   help="check the bundle's audit chain (offline with --file) and name the first broken link")


def _postmortem_commands(sub) -> None:
    pm = sub.add_parser("postmortem", help="show, edit and complete a postmortem; manage its action items")
    pm_sub = pm.add_subparsers(dest="postmortem_command", metavar="COMMAND", required=True)
    _command(pm_sub, "show", cmd.postmortem_show, "show the postmortem")
    p = _command(pm_sub, "edit", cmd.postmortem_edit, "write postmortem sections (creates the draft if missing)")
    for section in ("summary", "impact", "root-cause", "contributing-factors", "what-went-well", "owner"):
        p.add_argument(f"--{section}", dest=section.replace("-", "_"))
    p.add_argument("--timeline-entry", dest="timeline", action="append", help="repeatable; replaces the timeline")
    _command(pm_sub, "complete", cmd.postmortem_complete, "complete the postmortem")
    items = pm_sub.add_parser("action-item", help="add or update corrective action items")
    item_sub = items.add_subparsers(dest="item_command", metavar="COMMAND", required=True)
    p = _command(item_sub, "add", cmd.action_item_add, "add a corrective action item")
    p.add_argument("--title", required=True)
    p.add_argument("--owner", required=True)
    p.add_argument("--due", help="due date, YYYY-MM-DD")
    p.add_argument("--priority", choices=PRIORITIES)
    p = _command(item_sub, "update", cmd.action_item_update, "update an action item")
    p.add_argument("item", metavar="ITEM", help="action item id, e.g. AI-1")
    p.add_argument("--status", choices=ITEM_STATUSES)
    p.add_argument("--title")
    p.add_argument("--owner")
    p.add_argument("--due", help="due date, YYYY-MM-DD")
    p.add_argument("--priority", choices=PRIORITIES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incidentctl", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", help="the API (default: $INCIDENT_API_URL, else http://127.0.0.1:8080)")
    parser.add_argument("--as", dest="as_role", metavar="ROLE", choices=ROLES[:-1], help="use INCIDENT_TOKEN_<ROLE>")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the API (default 30)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _incident_commands(sub)
    _postmortem_commands(sub)
    oncall_commands.add_parsers(sub, _command)
    maintenance_commands.add_parsers(sub, _command)
    import_command.add_parser(sub, _command)
    token_commands.add_parsers(sub, _command)
    return parser


def _print(result: cmd.Result, fmt: str) -> None:
    if result.note and fmt == "table":
        print(result.note, file=sys.stderr)
    if fmt == "yaml" and result.raw is not None:
        print(result.raw)
    elif fmt in ("json", "yaml") and result.data is not None:
        print(dump(result.data, fmt))
    else:
        print(result.text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api = Api(resolve(args.api_url, args.as_role), timeout=args.timeout)
    try:
        result = args.handler(api, args)
        # export prints its bundle as text already; every other command honours -o.
        fmt = "table" if args.handler is cmd.export else getattr(args, "output", "table")
        _print(result, fmt)
        return int(Exit.OK)
    except CliError as exc:
        print(f"incidentctl: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"incidentctl: {exc.hint}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        return 130
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
