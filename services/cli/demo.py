"""make demo: one incident's whole life on the running stack, narrated step by step.

Alert -> incident -> notification -> acknowledge -> mitigate -> resolve (MTTR) ->
postmortem -> close -> the problem recurs -> reopened -> close refused until a new
corrective action -> closed for good.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.settings import REPO_ROOT

from .credentials import read_env_file


def say(step: str, text: str = "") -> None:
    print(f"\n\033[1m== {step}\033[0m" if sys.stdout.isatty() else f"\n== {step}")
    if text:
        print(f"   {text}")


def wait_for(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"demo: gave up waiting for {what} after {timeout:.0f}s (is `make up` running?)")


def notifications_for(bootstrap: str, team: str, incident_id: str) -> list[dict]:
    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            topic = f"notifications.{team}"
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if not partitions:
                await consumer._client.force_metadata_update()  # noqa: SLF001
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            found = []
            while True:
                behind = False
                for tp in partitions:
                    behind = behind or (await consumer.position(tp)) < end[tp]
                if not behind:
                    return found
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        value = json.loads(record.value)
                        if value.get("incident_id") == incident_id:
                            found.append(value)
        finally:
            await consumer.stop()

    return asyncio.run(read())


def main() -> None:
    creds = read_env_file(REPO_ROOT / ".local" / "credentials.env")
    stack = read_env_file(REPO_ROOT / ".local" / "stack.env")
    if not creds or not stack:
        raise SystemExit("demo: no running stack found: start it with `make up` (or `make run`) first")
    api = os.environ.get("INCIDENT_API_URL") or creds.get("INCIDENT_API_URL", "http://127.0.0.1:8080")
    bootstrap = stack.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    intake = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {creds['INCIDENT_INTEGRATION_KEY']}"}, timeout=30)
    admin = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {creds['INCIDENT_TOKEN_PLATFORM_ADMIN']}"}, timeout=30)
    alertname = f"CRMSyncFailing-{uuid.uuid4().hex[:6]}"

    def fire(status: str = "firing") -> None:
        payload = {
            "version": "4", "status": status, "receiver": "incident-handling", "groupLabels": {"alertname": alertname},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": alertname, "service": "connector:CRM", "severity": "critical"},
                "annotations": {"summary": "CRM sync failing: 42% of records rejected",
                                "runbook_url": "https://runbooks.example.com/connectors/crm"},
                "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"demo{alertname}",
            }],
        }
        response = intake.post("/v1/integrations/alertmanager", json=payload)
        response.raise_for_status()

    def act(path: str, body: dict | None = None, expect: int = 200) -> dict:
        response = admin.post(path, json=body or {})
        if response.status_code != expect:
            raise SystemExit(f"demo: {path} answered {response.status_code}: {response.text}")
        return response.json()

    say("1. Alertmanager fires", f"alert {alertname} for service connector:CRM (severity critical)")
    fire()

    def find():
        for summary in admin.get("/v1/incidents", params={"service": "connector:CRM"}).json()["incidents"]:
            record = admin.get(f"/v1/incidents/{summary['incident_id']}").json()
            if record["labels"].get("alertname") == alertname:
                return record
        return None

    incident = wait_for("the incident", find)
    iid = incident["incident_id"]
    say("2. Triage opened an incident",
        f"{iid}: {incident['severity']} on {incident['service']}, team {incident['team']}, "
        f"commander {incident['commander']} (on call), playbook {incident['playbook']['name']}")
    notes = wait_for("the team notification", lambda: notifications_for(bootstrap, incident["team"], iid))
    say("3. The team was told", f"notifications.{incident['team']}: {notes[0]['text']}")

    state = act(f"/v1/incidents/{iid}/acknowledge", {"note": "looking"})
    say("4. Acknowledged", f"status {state['status']}: escalation stops")
    state = act(f"/v1/incidents/{iid}/mitigations", {"description": "paused the sync job", "playbook_step": 1})
    say("5. Mitigating", f"playbook step ticked: {state['playbook']['steps'][1]['text']}")
    act(f"/v1/incidents/{iid}/updates", {"message": "Vendor confirms an outage; sync paused, no data lost."})
    say("6. Status update posted", "it is in the communication log and on the team topic")
    state = act(f"/v1/incidents/{iid}/resolve", {"note": "vendor recovered, backlog replayed"})
    say("7. Resolved", f"MTTR {state['mttr_minutes']} min (target {state['mttr_target_minutes']:g} min); "
        f"postmortem {state['postmortem']['status']}, owned by {state['postmortem']['owner']}")
    admin.put(f"/v1/incidents/{iid}/postmortem", json={
        "summary": "CRM vendor outage rejected sync batches", "impact": "CRM data 20 minutes stale",
        "root_cause": "Vendor API returned 503s; our retry gave up too early"}).raise_for_status()
    act(f"/v1/incidents/{iid}/postmortem/action-items", {"title": "Retry with back-off for 30 min", "owner": "alice",
                                                          "priority": "P2"}, expect=201)
    act(f"/v1/incidents/{iid}/postmortem/complete")
    say("8. Postmortem completed", "sections written, one corrective action item")
    act(f"/v1/incidents/{iid}/close", {"verification": "sync healthy for 30 minutes"})
    say("9. Closed", "verified by the commander")

    say("10. The problem recurs", "the same alert fires again")
    fire()
    state = wait_for("the reopen", lambda: (lambda s: s if s["status"] == "triggered" else None)(
        admin.get(f"/v1/incidents/{iid}").json()))
    say("11. The same incident reopened", f"{iid} reopen_count {state['reopen_count']}; a new incident was not opened")
    act(f"/v1/incidents/{iid}/resolve", {"note": "sync job restarted"})
    refused = admin.post(f"/v1/incidents/{iid}/close", json={"verification": "fine again"})
    say("12. Close refused", f"{refused.status_code}: {refused.json()['error']}")
    act(f"/v1/incidents/{iid}/postmortem/action-items", {"title": "Alert on vendor 503 rate", "owner": "bob",
                                                          "priority": "P1"}, expect=201)
    act(f"/v1/incidents/{iid}/close", {"verification": "additional action tracked; stable"})
    record = admin.get(f"/v1/incidents/{iid}", headers={"Accept": "application/yaml"}).text
    say("13. Closed for good. The record:")
    print("   " + record.strip().replace("\n", "\n   "))
    timeline = admin.get(f"/v1/incidents/{iid}").json()["timeline"]
    say("14. Audit trail", f"{len(timeline)} events on incident.audit and in PostgreSQL:")
    for entry in timeline:
        print(f"   v{entry['version']:<3} {entry['type']:<17} {entry['summary']}")


if __name__ == "__main__":
    main()
