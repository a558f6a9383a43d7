"""One function per incidentctl command: call the API, return what to print.

Each returns a Result: the data (printed as JSON or YAML with ``-o``) and the
text a person reads by default.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.domain.audit_chain import BrokenLink, verify_bundle

from . import render
from .client import Api, CliError, Exit, incident_path


@dataclass
class Result:
    data: Any
    text: str
    raw: str | None = None  # printed as is for -o yaml (the API's own YAML record)
    note: str | None = None  # for a person, on stderr (kept out of what scripts capture)


def _changed(record: dict, what: str) -> Result:
    text = f"{record['incident_id']} {what}: status {record.get('status')}, severity {record.get('severity')}, " \
           f"version {record.get('version')}"
    return Result(record, text)


def _given(**fields: Any) -> dict:
    return {name: value for name, value in fields.items() if value is not None}


def declare(api: Api, a: argparse.Namespace) -> Result:
    body = _given(title=a.title, service=a.service, severity=a.severity, category=a.category, impact=a.impact,
                  commander=a.commander)
    return _changed(api.post("/v1/incidents", body), "declared")


def list_(api: Api, a: argparse.Namespace) -> Result:
    params = _given(status=a.status, service=a.service, severity=a.severity, team=a.team, limit=a.limit)
    data = api.get("/v1/incidents", params=params)
    return Result(data, render.incident_list(data["incidents"]))


def show(api: Api, a: argparse.Namespace) -> Result:
    if a.output == "yaml":
        text = api.request("GET", incident_path(a.id), accept="application/yaml").text.rstrip("\n")
        return Result(None, text, raw=text)
    record = api.get(incident_path(a.id))
    return Result(record, render.incident(record))


def ack(api: Api, a: argparse.Namespace) -> Result:
    return _changed(api.post(incident_path(a.id, "acknowledge"), _given(note=a.note)), "acknowledged")


def update(api: Api, a: argparse.Namespace) -> Result:
    return _changed(api.post(incident_path(a.id, "updates"), {"message": a.message}), "update posted")


def mitigate(api: Api, a: argparse.Namespace) -> Result:
    body = _given(description=a.description, playbook_step=a.step)
    return _changed(api.post(incident_path(a.id, "mitigations"), body), "mitigation recorded")


def evidence(api: Api, a: argparse.Namespace) -> Result:
    content = a.text
    if a.file is not None:
        try:
            content = Path(a.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(Exit.INVALID, f"cannot read {a.file}: {exc}") from None
    if a.url is None and content is None:
        raise CliError(Exit.USAGE, "evidence needs --url, --text or --file")
    body = _given(title=a.title, url=a.url, content=content, media_type=a.media_type)
    return _changed(api.post(incident_path(a.id, "evidence"), body), "evidence attached")


def severity(api: Api, a: argparse.Namespace) -> Result:
    body = {"severity": a.severity, "reason": a.reason}
    return _changed(api.post(incident_path(a.id, "severity"), body), f"severity set to {a.severity}")


def commander(api: Api, a: argparse.Namespace) -> Result:
    body = _given(commander=a.name, reason=a.reason)
    return _changed(api.post(incident_path(a.id, "commander"), body), f"handed to {a.name}")


def resolve(api: Api, a: argparse.Namespace) -> Result:
    return _changed(api.post(incident_path(a.id, "resolve"), _given(note=a.note)), "resolved")


def close(api: Api, a: argparse.Namespace) -> Result:
    return _changed(api.post(incident_path(a.id, "close"), {"verification": a.verification}), "closed")


def reopen(api: Api, a: argparse.Namespace) -> Result:
    return _changed(api.post(incident_path(a.id, "reopen"), {"reason": a.reason}), "reopened")


def _pm(pm: dict, incident_id: str, what: str) -> Result:
    return Result(pm, f"{incident_id} postmortem {what}\n{render.postmortem(pm)}")


def postmortem_show(api: Api, a: argparse.Namespace) -> Result:
    pm = api.get(incident_path(a.id, "postmortem"))
    return Result(pm, render.postmortem(pm))


def postmortem_edit(api: Api, a: argparse.Namespace) -> Result:
    body = _given(summary=a.summary, impact=a.impact, root_cause=a.root_cause,
                  contributing_factors=a.contributing_factors, what_went_well=a.what_went_well, owner=a.owner,
                  timeline=a.timeline)
    if not body:
        raise CliError(Exit.USAGE, "postmortem edit needs at least one section (--summary, --impact, --root-cause...)")
    return _pm(api.put(incident_path(a.id, "postmortem"), body), a.id, "updated")


def action_item_add(api: Api, a: argparse.Namespace) -> Result:
    body = _given(title=a.title, owner=a.owner, due_date=a.due, priority=a.priority)
    return _pm(api.post(incident_path(a.id, "postmortem", "action-items"), body), a.id, "action item added")


def action_item_update(api: Api, a: argparse.Namespace) -> Result:
    body = _given(title=a.title, owner=a.owner, due_date=a.due, priority=a.priority, status=a.status)
    if not body:
        raise CliError(Exit.USAGE, "action-item update needs a change (--status, --title, --owner, --due, --priority)")
    path = incident_path(a.id, "postmortem", "action-items", a.item)
    return _pm(api.patch(path, body), a.id, f"action item {a.item} updated")


def postmortem_complete(api: Api, a: argparse.Namespace) -> Result:
    return _pm(api.post(incident_path(a.id, "postmortem", "complete")), a.id, "completed")


def export(api: Api, a: argparse.Namespace) -> Result:
    if getattr(a, "verify", False):
        return verify_export(api, a)
    bundle = api.get(incident_path(a.id, "export"))
    fmt = a.output if a.output in ("json", "yaml") else "json"
    if a.file:
        path = Path(a.file)
        try:
            path.write_text(render.dump(bundle, fmt) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(Exit.ERROR, f"cannot write {path}: {exc}") from None
        counts = ", ".join(f"{len(bundle.get(k) or [])} {k.replace('_', ' ')}"
                           for k in ("timeline", "audit_events", "communication_log", "evidence", "alerts"))
        return Result({"file": str(path), "format": fmt}, f"{a.id} exported to {path} ({counts})")
    # Without a file the bundle itself is the output (JSON unless -o yaml).
    return Result(bundle, render.dump(bundle, fmt))


def _read_bundle(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(Exit.INVALID, f"cannot read the bundle {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise CliError(Exit.INVALID, f"{path} is not an export bundle")
    return loaded


def verify_export(api: Api, a: argparse.Namespace) -> Result:
    """Check an export bundle's audit chain: a saved one (``--file``, no API needed) or fetched."""
    bundle = _read_bundle(Path(a.file)) if a.file else api.get(incident_path(a.id, "export"))
    named = (bundle.get("incident") or {}).get("incident_id")
    if named != a.id:
        raise CliError(Exit.INVALID, f"the bundle is of incident {named!r}, not {a.id}")
    verdict = verify_bundle(bundle)
    if isinstance(verdict, BrokenLink):
        raise CliError(Exit.TAMPERED, f"audit chain broken: {verdict}",
                       "the event named (or one before it) was changed, removed or inserted after it was recorded")
    legacy = f", {verdict.unchained} recorded before the chain" if verdict.unchained else ""
    data = {"incident_id": verdict.incident_id, "verified": True, "events": verdict.events,
            "unchained": verdict.unchained, "head": verdict.head}
    return Result(data, f"{verdict.incident_id}: audit chain intact ({verdict.events} events{legacy}); "
                        f"head {verdict.head}")

