"""1,000 alerts over 10 fingerprints, sent concurrently, while triage is killed and restarted."""
from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import httpx

from harness import read_topic, wait_until


def _send(platform, key: str, batches: list[list[dict]]) -> list[int]:
    codes = []
    with httpx.Client(base_url=platform.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for batch in batches:
            codes.append(client.post("/v1/alerts", json=batch).status_code)
    return codes


def _counts(admin, names: set[str]) -> dict[str, tuple[str, int]]:
    found = {}
    for summary in admin.get("/v1/incidents", params={"service": "billing-worker", "limit": 1000}).json()["incidents"]:
        record = admin.get(f"/v1/incidents/{summary['incident_id']}").json()
        name = record["labels"].get("alertname")
        if name in names:
            assert name not in found, f"a second incident for {name}: {found[name][0]} and {summary['incident_id']}"
            found[name] = (summary["incident_id"], record["alert_count"])
    return found


def _per_hop(names: set[str]) -> dict:
    """Where this storm's alerts are on each hop: where a loss happened, if one did.

    Past triage.correlation the alerts are folded (one command, one audit event per
    incident per batch), so those hops count the alert positions their commands carry.
    """
    def alert_ids(topic, pick):
        found = set()
        for message in read_topic(topic, timeout=5):
            alert = pick(message)
            if alert and (alert.get("labels") or {}).get("alertname") in names:
                found.add(alert.get("alert_id") or f"{message['_partition']}:{message.get('_offset')}")
        return len(found)

    commands = read_topic("incident.commands", timeout=5)
    opened = {m["_key"]: m["command"]["alert"]["labels"]["alertname"] for m in commands
              if (m.get("command") or {}).get("kind") == "open" and (m["command"].get("alert") or {}).get("labels", {})
              .get("alertname") in names}
    attached: dict[str, set] = {}
    for m in commands:
        if m["_key"] in opened and m["command"].get("kind") == "attach_alerts":
            attached.setdefault(m["_key"], set()).update(
                o.get("alert_id") for o in m["command"].get("origins") or [])
    audit = [m for m in read_topic("incident.audit", timeout=5) if m.get("_key") in opened]
    versions: dict[str, list] = {}
    for m in audit:
        versions.setdefault(m["_key"], []).append(m["incident"]["version"])
    table: dict[str, tuple] = {}
    for m in read_topic("incident-test-triage-incidents-changelog", timeout=5):
        key = (m["_key"] or "").strip('"')
        if key in opened:
            incident = m.get("incident") or {}
            table[key] = (incident.get("version"), incident.get("alert_count"), m.get("applied_offset"))
    return {
        "intake": len([m for m in read_topic("alerts.intake", timeout=5)
                       if (m.get("labels") or {}).get("alertname") in names]),
        "triage.alerts": alert_ids("triage.alerts", lambda m: m.get("alert")),
        "triage.correlation": alert_ids("triage.correlation", lambda m: m.get("alert")),
        "opened (incident, name, open commands)": sorted(
            (k, v, sum(1 for m in commands if m["_key"] == k and m["command"].get("kind") == "open"))
            for k, v in opened.items()),
        "attached positions per incident": {k: len(v) for k, v in sorted(attached.items())},
        "audit versions per incident": {k: (len(v), max(v)) for k, v in sorted(versions.items())},
        "table (version, alert_count, applied_offset)": dict(sorted(table.items())),
    }


def test_thousand_alerts_ten_fingerprints_exactly_ten_incidents_across_a_triage_kill(platform, tokens, admin, unique):
    names = [f"Storm{i}-{unique}" for i in range(10)]
    alerts = [
        {"service": "billing-worker", "summary": f"{names[i % 10]} firing", "severity": "warning",
         "dedup_key": f"{unique}-fp{i % 10}", "labels": {"alertname": names[i % 10]}}
        for i in range(1000)
    ]
    first, second = alerts[:500], alerts[500:]

    def send_all(chunk):
        groups = [chunk[i::8] for i in range(8)]
        work = [[group[j:j + 5] for j in range(0, len(group), 5)] for group in groups]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return [code for codes in pool.map(lambda b: _send(platform, tokens["integration"], b), work) for code in codes]

    codes = send_all(first)
    # Triage is mid-way: some incidents exist, most alerts are still queued.
    wait_until(lambda: _counts(admin, set(names)), timeout=60, what="triage to have opened an incident")
    with ThreadPoolExecutor(max_workers=1) as background:
        rest = background.submit(send_all, second)
        # Killed with no chance to commit offsets or flush its table changelogs.
        platform.kill("triage", signal.SIGKILL)  # the supervisor starts it again, as make up's would
        codes += rest.result()
    # Intake does not depend on triage: every alert is accepted while it is down.
    assert set(codes) == {202} and len(codes) == 208  # 1,000 alerts in batches of up to 5
    platform.wait_ready("triage")

    last: dict = {}

    def settled():
        found = last["found"] = _counts(admin, set(names))
        return found if len(found) == 10 and sum(count for _, count in found.values()) >= 1000 else None

    try:
        found = wait_until(settled, timeout=120, interval=1.0, what="1,000 alerts on 10 incidents")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last.get('found')}; per hop: {_per_hop(set(names))}; "
                             f"{platform.snapshot('triage')}") from None
    assert {name: count for name, (_, count) in found.items()} == {name: 100 for name in names}
    # Commands triage applied again after the kill made the same events: no chain forked.
    for incident_id, _ in found.values():
        chain = admin.get(f"/v1/incidents/{incident_id}/export").json()["audit_chain"]
        assert chain["verified"], f"{incident_id}: {chain['broken_at']}"
