"""incidentctl import opsgenie|pagerduty FILE --plan|--apply: an export of the other tool's REST API
answers becomes organisation YAML. Nothing is sent anywhere: the command reads two files and
(with --apply) writes one, only when the result is a valid organisation."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import yaml

from shared.config_loader import ConfigError, parse_organisation
from shared.settings import DEFAULT_CONFIG

from .client import Api, CliError, Exit
from .commands import Result
from .importers import opsgenie, pagerduty
from .importers.plan import merge, render

TRANSLATORS = {"opsgenie": opsgenie.translate, "pagerduty": pagerduty.translate}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(Exit.INVALID, f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(Exit.INVALID, f"{path} is not JSON: {exc}") from None


def _write(path: Path, text: str) -> None:
    """Replace the file at once (a crash never leaves half an organisation)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(_: Api, a: argparse.Namespace) -> Result:
    config = Path(a.config or os.environ.get("INCIDENT_CONFIG") or DEFAULT_CONFIG)
    try:
        text = config.read_text(encoding="utf-8")
        base = parse_organisation(text, str(config))
    except OSError as exc:
        raise CliError(Exit.INVALID, f"cannot read the organisation file {config}: {exc.strerror}") from None
    except ConfigError as exc:
        raise CliError(Exit.INVALID, str(exc)) from None
    export = _read_json(Path(a.file))
    if not isinstance(export, dict):
        raise CliError(Exit.INVALID, f"{a.file}: expected one JSON object holding the API's answers (README)")
    try:
        imported = TRANSLATORS[a.source](export, datetime.now(timezone.utc), base.fallback_team)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CliError(Exit.INVALID, f"{a.file} is not shaped like {a.source}'s API answers "
                                     f"({type(exc).__name__}: {exc})") from None
    merged, changes = merge(yaml.safe_load(text), imported)
    result = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True)
    target = Path(a.to) if a.to else config
    try:
        parse_organisation(result, str(target))
    except ConfigError as exc:
        raise CliError(Exit.INVALID, f"the import would make an invalid organisation file, so nothing is written: "
                                     f"{exc}") from None
    if a.apply:
        _write(target, result)
    data = {"source": a.source, "organisation": str(target), "written": bool(a.apply),
            "changes": [asdict(c) for c in changes], "not_carried_over": [asdict(s) for s in imported.skipped]}
    return Result(data, render(imported, changes, str(target), applied=bool(a.apply)))


def add_parser(sub, command) -> None:
    p = command(sub, "import", run, "turn an Opsgenie or PagerDuty REST API export into organisation YAML",
                incident=False)
    p.add_argument("source", choices=sorted(TRANSLATORS))
    p.add_argument("file", metavar="FILE", help="one JSON object of the API's answers (see the README)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plan", action="store_true", help="print what would change and what cannot be carried over")
    mode.add_argument("--apply", action="store_true", help="write it (only when the result is a valid organisation)")
    p.add_argument("--config", help="the organisation file to start from (default: $INCIDENT_CONFIG, else the example)")
    p.add_argument("--to", metavar="PATH", help="where to write it (default: over --config)")
