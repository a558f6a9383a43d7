"""Audit events made by hand, in the formats triage publishes, for the recorder's tests.

The incidents are closed, never resolved (so no metric window holds them), on a service of
the test's own, and carry only ``alerts_attached`` changes (which no counter counts yet):
the other services fold them as triage's own and every metric still agrees with PostgreSQL.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from harness import sql
from shared.domain.incident import Incident

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def snapshot(incident_id: str, service: str, version: int, alert_count: int, **changes) -> dict:
    incident = Incident(
        incident_id=incident_id, correlation_key=f"test:{incident_id}", title=f"recorder test {incident_id}",
        service=service, team="integrations", severity="SEV3", category="operational", impact="none",
        status="closed", detected_at=T0, opened_at=T0, closed_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(seconds=version), alert_count=alert_count, version=version,
        labels={"alertname": f"Rec-{incident_id}"},
    )
    record = incident.model_dump(mode="json", exclude={"alerts"})
    return {**record, **changes}


def ref(fingerprint: str, count: int, *, labels: dict | None = None, status: str = "firing") -> dict:
    seen = T0 + timedelta(seconds=count)
    return {"fingerprint": fingerprint, "dedup_key": fingerprint, "summary": f"{fingerprint} down", "name": "HostDown",
            "status": status, "count": count, "first_seen": T0.isoformat(), "last_seen": seen.isoformat(),
            "source": "alertmanager", "labels": labels if labels is not None else {"instance": fingerprint}}


def alerts_attached(incident_id: str, service: str, version: int, refs: list[dict], alert_count: int,
                    distinct: int | None = None) -> dict:
    """The new format: one event for the alerts of one batch, with the references they touched."""
    firing = sum(1 for r in refs if r["status"] == "firing")
    return {
        "event_id": f"{incident_id}/v{version}", "type": "incident.updated", "change": "alerts_attached",
        "incident_id": incident_id, "occurred_at": (T0 + timedelta(seconds=version)).isoformat(),
        "actor": "monitoring:test", "version": version, "summary": f"{len(refs)} alerts attached",
        "causation_id": None,
        "data": {"count": len(refs), "firing": firing, "resolved": len(refs) - firing, "refs": refs,
                 "firing_alerts": firing, "distinct_alerts": distinct if distinct is not None else len(refs),
                 "detected_at": None},
        "incident": snapshot(incident_id, service, version, alert_count, firing_alerts=firing,
                             distinct_alerts=distinct if distinct is not None else len(refs)),
    }


def encoded(event: dict) -> tuple[str, bytes]:
    return event["incident_id"], json.dumps(event).encode()


def synthetic_id() -> str:
    """An incident id no triage allocates (a day long past, a number no day reaches)."""
    return f"INC-2001-01-01-{uuid.uuid4().int % 10**9:09d}"


def forget(incident_ids: list[str]) -> None:
    """Remove what the tests wrote straight into PostgreSQL (no service saw it: no metric may count it)."""
    for table in ("audit_events", "incidents", "incident_alerts", "incident_alert_stats", "communications",
                  "command_results"):
        sql(f"DELETE FROM {table} WHERE incident_id = ANY($1::text[])", incident_ids)
