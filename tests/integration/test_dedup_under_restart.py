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


def _per_hop(names: set[str]) -> dict[str, int]:
    """Distinct alerts of this storm seen on each hop: where a loss happened, if one did."""
    def alert_ids(topic, pick):
        found = set()
        for message in read_topic(topic, timeout=5):
            alert = pick(message)
            if alert and (alert.get("labels") or {}).get("alertname") in names:
                found.add(alert.get("alert_id") or f"{message['_partition']}:{message.get('_offset')}")
        return len(found)

    return {
        "intake": len([m for m in read_topic("alerts.intake", timeout=5)
                       if (m.get("labels") or {}).get("alertname") in names]),
        "triage.alerts": alert_ids("triage.alerts", lambda m: m.get("alert")),
        "triage.correlation": alert_ids("triage.correlation", lambda m: m.get("alert")),
        "incident.commands": alert_ids("incident.commands", lambda m: (m.get("command") or {}).get("alert")),
        "incident.audit": len({m["data"].get("alert_id") or m["event_id"] for m in read_topic("incident.audit", timeout=5)
                               if m.get("change") in ("alert_attached", "opened")
                               and (m["incident"].get("labels") or {}).get("alertname") in names}),
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
        raise AssertionError(f"{exc}; last seen: {last.get('found')}; per hop: {_per_hop(set(names))}") from None
    assert {name: count for name, (_, count) in found.items()} == {name: 100 for name in names}
    # Commands triage applied again after the kill made the same events: no chain forked.
    for incident_id, _ in found.values():
        chain = admin.get(f"/v1/incidents/{incident_id}/export").json()["audit_chain"]
        assert chain["verified"], f"{incident_id}: {chain['broken_at']}"
