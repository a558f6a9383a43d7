"""make screenshots: the web console at desktop and phone widths, as PNGs in .local/screenshots/.

Runs the six services on the stack deploy/scripts/screenshots.sh started (example
organisation), makes a few incidents the way people and monitoring would, and
photographs the board, an incident page, the postmortem editor, the on-call view and
the numbers with Debian's Chromium.
"""
from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from console_session import launch, sign_in_page  # noqa: E402
from harness import SERVICES, Platform, test_environment, wait_until  # noqa: E402
from shared.auth import Role  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.db.tokens import create_token  # noqa: E402

OUT = REPO / ".local" / "screenshots"
WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


async def _tokens() -> dict[str, str]:
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await migrate(conn)
        _, key = await create_token(conn, Role.INTEGRATION, "screenshots")
        _, admin = await create_token(conn, Role.PLATFORM_ADMIN, "alice")
        return {"key": key, "admin": admin}
    finally:
        await conn.close()


def _seed(api_url: str, creds: dict[str, str]) -> dict[str, str]:
    """A morning's incidents: a CRM outage being worked, a database alarm, one resolved with a postmortem."""
    intake = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {creds['key']}"}, timeout=30)
    admin = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {creds['admin']}"}, timeout=30)
    tag = uuid.uuid4().hex[:4]
    alerts = [
        {"service": "connector:CRM", "summary": "CRM sync failing: 502 from vendor API", "severity": "critical",
         "labels": {"alertname": f"CRMSyncFailing{tag}", "instance": "sync-1"}},
        {"service": "postgres-main", "summary": "Replication lag above 30 s", "severity": "error",
         "labels": {"alertname": f"ReplicationLag{tag}"}},
        {"service": "billing-worker", "summary": "Invoice queue backing up", "severity": "warning",
         "labels": {"alertname": f"InvoiceQueue{tag}"}},
        {"service": "kubernetes", "summary": "Node pool at 92% memory", "severity": "warning",
         "labels": {"alertname": f"NodeMemory{tag}"}},
    ]
    assert intake.post("/v1/alerts", json=alerts).status_code == 202
    wanted = {a["summary"] for a in alerts}
    found = wait_until(lambda: (lambda got: got if wanted <= set(got) else None)(
        {i["title"]: i["incident_id"] for i in admin.get("/v1/incidents", params={"limit": 100}).json()["incidents"]}),
        timeout=60, what="the seeded incidents")
    crm, db = found[alerts[0]["summary"]], found[alerts[1]["summary"]]
    admin.post(f"/v1/incidents/{crm}/acknowledge", json={"note": "on it"})
    admin.post(f"/v1/incidents/{crm}/updates", json={"message": "Vendor confirms an API outage; sync paused."})
    admin.post(f"/v1/incidents/{crm}/mitigations", json={"description": "Checked the vendor status page",
                                                          "playbook_step": 0})
    admin.post(f"/v1/incidents/{crm}/evidence", json={"title": "Vendor status page",
                                                       "url": "https://status.example.com/incidents/123"})
    checkout = admin.post("/v1/incidents", json={"title": "Checkout latency after deploy 2.14",
                                                 "service": "checkout-api", "severity": "SEV2"}).json()["incident_id"]
    admin.post(f"/v1/incidents/{checkout}/resolve", json={"note": "rolled back to 2.13"})
    admin.put(f"/v1/incidents/{checkout}/postmortem", json={
        "summary": "Deploy 2.14 doubled checkout latency for 25 minutes.",
        "impact": "p95 checkout latency 4 s; about 3% of carts abandoned.",
        "root_cause": "A new fraud check called the scoring service synchronously.",
    })
    admin.post(f"/v1/incidents/{checkout}/postmortem/action-items",
               json={"title": "Make the fraud check asynchronous", "owner": "dave", "due_date": "2027-01-15",
                     "priority": "P2"})
    admin.post(f"/v1/incidents/{checkout}/postmortem/action-items",
               json={"title": "Alert on checkout p95 above 1 s", "owner": "erin"})
    return {"incident": crm, "postmortem": checkout, "db": db}


def _shoot(web_url: str, token: str, ids: dict[str, str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    pages = {"board": "/", "incident": f"/incidents/{ids['incident']}",
             "postmortem": f"/incidents/{ids['postmortem']}/postmortem", "oncall": "/oncall", "numbers": "/numbers"}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for width, viewport in WIDTHS.items():
            context = browser.new_context(viewport=viewport, timezone_id="Europe/Berlin",
                                          device_scale_factor=1, is_mobile=width == "phone")
            page = context.new_page()
            sign_in_page(page, web_url, token)
            for name, path in pages.items():
                page.goto(f"{web_url}{path}")
                page.wait_for_load_state("networkidle") if name != "board" else page.wait_for_selector("#board-rows")
                target = OUT / f"{name}-{width}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
            context.close()
        browser.close()
    return written


def main() -> None:
    env = test_environment()
    state = REPO / ".local" / "screenshots-stack"
    env.update({"DATA_DIR": str(state / "data"), "INCIDENT_CONFIG": str(REPO / "deploy" / "config" / "organisation.yaml"),
                "APP_PREFIX": "incident-shots"})
    logs = state / "logs"
    (state / "run").mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    platform = Platform(env=env, logs=logs)
    for name in SERVICES:
        platform.start(name)
    try:
        platform.wait_ready()
        creds = asyncio.run(_tokens())
        ids = _seed(platform.api_url, creds)
        for path in _shoot(platform.web_url, creds["admin"], ids):
            print(f"wrote {path.relative_to(REPO)}")
    finally:
        platform.stop_all()


if __name__ == "__main__":
    main()
