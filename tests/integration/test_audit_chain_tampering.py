"""The audit trail is tamper-evident: one audit row edited in PostgreSQL, and verification names it."""
from __future__ import annotations

import json

from harness import incident_for, incidentctl, sql, wait_until


def _incidentctl(platform, token: str, *args: str):
    return incidentctl(platform.api_url, token, *args)


def test_an_edited_audit_row_is_named_by_verification(platform, tokens, intake, admin, unique, tmp_path):
    alertname = f"ChainTamper-{unique}"
    assert intake.post("/v1/alerts", json={"service": "connector:CRM", "summary": f"CRM sync failing {unique}",
                                           "labels": {"alertname": alertname}}).status_code == 202
    incident_id = incident_for(admin, alertname)["incident_id"]
    assert admin.post(f"/v1/incidents/{incident_id}/acknowledge", json={"note": "on it"}).status_code == 200
    assert admin.post(f"/v1/incidents/{incident_id}/updates", json={"message": "replaying"}).status_code == 200
    resolved = admin.post(f"/v1/incidents/{incident_id}/resolve", json={"note": "replayed"})
    assert resolved.status_code == 200
    version = resolved.json()["version"]

    compliance = {"Authorization": f"Bearer {tokens['compliance-officer']}"}
    bundle = wait_until(lambda: (b := admin.get(f"/v1/incidents/{incident_id}/export", headers=compliance).json())
                        and len(b["audit_events"]) == version and b, what="every audit event recorded")
    events, chain = bundle["audit_events"], bundle["audit_chain"]
    assert chain["verified"] is True and chain["broken_at"] is None, chain
    assert [e["version"] for e in events] == list(range(1, version + 1))
    assert events[0]["prev_hash"] == chain["genesis"] == "0" * 64
    assert all(after["prev_hash"] == before["hash"] for before, after in zip(events, events[1:]))
    assert chain["head"] == events[-1]["hash"]
    [stored] = sql("SELECT audit_head FROM incidents WHERE incident_id = $1", incident_id)
    assert stored["audit_head"] == chain["head"]
    intact = _incidentctl(platform, tokens["compliance-officer"], "export", incident_id, "--verify")
    assert intact.returncode == 0 and f"{incident_id}: audit chain intact ({version} events)" in intact.stdout, \
        intact.stderr
    saved = tmp_path / "bundle.json"
    saved.write_text(json.dumps(bundle), encoding="utf-8")

    # Someone with write access to the database rewrites who acknowledged the incident.
    acknowledged = next(e for e in events if e["change"] == "acknowledged")
    sql("UPDATE audit_events SET actor = 'mallory' WHERE event_id = $1", acknowledged["event_id"])

    tampered = admin.get(f"/v1/incidents/{incident_id}/export").json()["audit_chain"]
    assert tampered["verified"] is False
    assert tampered["broken_at"]["event_id"] == acknowledged["event_id"]
    assert tampered["broken_at"]["version"] == acknowledged["version"]
    broken = _incidentctl(platform, tokens["compliance-officer"], "export", incident_id, "--verify")
    assert broken.returncode == 9, broken.stderr
    assert (f"audit chain broken: incident {incident_id}: broken at version {acknowledged['version']}, "
            f"event {acknowledged['event_id']}: content does not match its hash") in broken.stderr
    # The bundle saved before the edit still verifies offline (no token, no API): it is the evidence.
    offline = _incidentctl(platform, "", "export", incident_id, "--verify", "--file", str(saved))
    assert offline.returncode == 0, offline.stderr
