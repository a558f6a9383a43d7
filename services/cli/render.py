"""What incidentctl prints: aligned tables for people, JSON or YAML for scripts."""
from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import yaml


def dump(data: Any, fmt: str) -> str:
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)


def _cell(value: Any, width: int | None = None) -> str:
    text = "-" if value is None or value == "" else str(value)
    text = " ".join(text.split())
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], widths: dict[str, int] | None = None) -> str:
    widths = widths or {}
    cells = [[_cell(value, widths.get(header)) for header, value in zip(headers, row)] for row in rows]
    sizes = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(sizes[i]) for i, header in enumerate(headers)).rstrip()]
    lines += ["  ".join(cell.ljust(sizes[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)


def _when(value: str | None) -> str:
    # 2026-11-27T07:25:51.123+00:00 -> 2026-11-27 07:25:51Z: enough for a person, sortable.
    if not value:
        return "-"
    return value[:19].replace("T", " ") + ("Z" if value.endswith(("+00:00", "Z")) else "")


def incident_list(incidents: list[dict]) -> str:
    if not incidents:
        return "no incidents"
    rows = [
        (i["incident_id"], i.get("severity"), i.get("status"), i.get("service"), i.get("team"), i.get("commander"),
         _when(i.get("opened_at")), i.get("mttr_minutes"), i.get("title"))
        for i in incidents
    ]
    headers = ("ID", "SEV", "STATUS", "SERVICE", "TEAM", "COMMANDER", "OPENED", "MTTR", "TITLE")
    return table(headers, rows, widths={"ID": 24, "SERVICE": 24, "TEAM": 16, "COMMANDER": 16, "TITLE": 60})


def _field_lines(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    width = max(len(name) for name, _ in pairs) + 1
    return [f"{(name + ':').ljust(width)} {_cell(value)}" for name, value in pairs]


def action_items(items: list[dict]) -> str:
    if not items:
        return "  (no action items)"
    rows = [(a.get("item_id"), a.get("priority"), a.get("status"), a.get("owner"), a.get("due_date"), a.get("title"))
            for a in items]
    body = table(("ITEM", "PRIO", "STATUS", "OWNER", "DUE", "TITLE"), rows, widths={"OWNER": 16, "TITLE": 60})
    return "\n".join("  " + line for line in body.splitlines())


def postmortem(pm: dict | None) -> str:
    if not pm:
        return "no postmortem yet"
    lines = _field_lines([
        ("Postmortem", f"{pm.get('status')}{' (required)' if pm.get('required') else ''}"),
        ("Owner", pm.get("owner")),
        ("Due", _when(pm.get("due_at"))),
        ("Completed", _when(pm.get("completed_at"))),
    ])
    for section in ("summary", "impact", "root_cause", "contributing_factors", "what_went_well"):
        if pm.get(section):
            lines.append(f"{section.replace('_', ' ').capitalize()}: {pm[section]}")
    lines.append("Action items:")
    lines.append(action_items(pm.get("action_items") or []))
    return "\n".join(lines)


def incident(record: dict) -> str:
    playbook = record.get("playbook") or {}
    mttr = record.get("mttr_minutes")
    target = record.get("mttr_target_minutes")
    lines = [f"{record['incident_id']}  {record.get('severity')}  {record.get('status')}  {record.get('title')}"]
    lines += _field_lines([
        ("Service", f"{record.get('service')} (team {record.get('team')})"),
        ("Category", record.get("category")),
        ("Commander", record.get("commander")),
        ("Impact", record.get("impact")),
        ("Opened", _when(record.get("opened_at"))),
        ("Acknowledged", _when(record.get("acknowledged_at"))),
        ("Resolved", _when(record.get("resolved_at"))),
        ("Closed", _when(record.get("closed_at"))),
        ("MTTR", f"{mttr if mttr is not None else '-'} min (target {target if target is not None else '-'})"),
        ("Alerts", f"{record.get('alert_count', 0)} received, reopened {record.get('reopen_count', 0)} times"),
        ("Runbook", playbook.get("runbook_url")),
    ])
    held = record.get("maintenance")
    if held:
        lines += _field_lines([("Maintenance", f"{held.get('window_id')} ({held.get('reason')}): not paged until "
                                              f"{_when(held.get('until'))}")])
    steps = playbook.get("steps") or []
    if steps:
        lines.append("Playbook:")
        lines += [f"  [{'x' if s.get('done') else ' '}] {n}. {s.get('text')}" for n, s in enumerate(steps)]
    timeline = record.get("timeline") or []
    lines.append(f"Timeline ({len(timeline)}):")
    lines += [f"  {_when(e.get('occurred_at'))}  {e.get('actor')}: {e.get('summary')}" for e in timeline]
    evidence = record.get("evidence") or []
    if evidence:
        lines.append(f"Evidence ({len(evidence)}):")
        lines += [f"  {e.get('evidence_id')}  {e.get('title')}  {e.get('url') or ''}".rstrip() for e in evidence]
    log = record.get("communication_log") or []
    lines.append(f"Communication log: {len(log)} entries")
    lines.append(postmortem(record.get("postmortem")))
    return "\n".join(lines)
