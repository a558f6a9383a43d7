"""The web console in a real headless Chromium against the real stack: sign in, watch an
incident arrive, drive it to closed, write its postmortem, and the console's refusals
(forbidden commands, restricted incidents, missing CSRF token)."""
from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from console_session import csrf_of, launch, sign_in_page, signed_in_client
from harness import incident_for, wait_until

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(platform, tokens):
    # Module scope: Playwright's sync API keeps an event loop running, which the harness's
    # asyncio helpers in other modules cannot share; one browser serves this whole module.
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page_for(browser, platform, tokens):
    contexts = []

    def open_as(role: str, timezone_id: str = "Europe/Berlin", **options):
        context = browser.new_context(timezone_id=timezone_id, **options)
        contexts.append(context)
        page = context.new_page()
        sign_in_page(page, platform.web_url, tokens[role])
        return page

    yield open_as
    for context in contexts:
        context.close()


def _alert(intake: httpx.Client, **fields) -> None:
    answer = intake.post("/v1/alerts", json=fields)
    assert answer.status_code == 202, answer.text


def _live(page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "connected", timeout=15_000)


def test_sign_in_refuses_a_bad_token_and_sign_out_ends_the_session(browser, platform, tokens):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{platform.web_url}/oncall")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Foncall$"))
    page.get_by_label("User token").fill("inc_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("User token").fill(tokens["integration"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("integration key")
    page.get_by_label("User token").fill(tokens["observability-engineer"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{platform.web_url}/oncall")  # back where the user was going
    cookie = next(c for c in context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert tokens["observability-engineer"] not in page.content()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{platform.web_url}/sign-in")
    page.goto(f"{platform.web_url}/")
    expect(page).to_have_url(re.compile(r"/sign-in"))
    context.close()


def test_a_responder_drives_an_alerts_incident_from_the_board_to_closed(page_for, platform, intake, admin):
    unique = uuid.uuid4().hex[:8]
    page = page_for("platform-admin", timezone_id="America/New_York")
    _live(page)
    page.evaluate("window.__sameDocument = true")
    _alert(intake, service="connector:CRM", summary=f"CRM sync failing {unique}", severity="warning",
           labels={"alertname": f"ConsoleCRM{unique}"})
    row = page.locator("#board-rows tr", has_text=f"CRM sync failing {unique}")
    expect(row).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True  # arrived without a reload
    expect(row).to_contain_text("triggered")
    row.get_by_role("link").click()

    header = page.locator("#incident-header")
    expect(header).to_contain_text("triggered")
    detected = header.locator("time").first
    expect(detected).to_have_attribute("title", re.compile(r"UTC$"))
    expect(detected).to_contain_text(re.compile(r"E[SD]T"))  # the viewer's zone

    page.get_by_role("button", name="Acknowledge").click()
    expect(header).to_contain_text("acknowledged")
    page.get_by_label("Status update").fill(f"Vendor confirms an outage {unique}")
    page.get_by_role("button", name="Post update").click()
    expect(page.locator("#incident-log")).to_contain_text(f"Vendor confirms an outage {unique}")
    page.get_by_label("Mitigation", exact=True).fill("Paused the sync job by hand")
    page.get_by_role("button", name="Add mitigation").click()
    expect(header).to_contain_text("mitigating")
    expect(page.locator("#incident-timeline")).to_contain_text("Paused the sync job by hand")
    page.get_by_role("button", name="Tick step 1: Check the CRM vendor status page").click()
    expect(page.locator("#incident-playbook li.done")).to_contain_text("Check the CRM vendor status page")
    page.get_by_label("Resolution note").fill("Vendor fixed their API")
    page.get_by_role("button", name="Resolve").click()
    expect(header).to_contain_text("resolved")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    page.get_by_label("Verification note (required)").fill("Sync ran clean twice")
    page.get_by_role("button", name="Close").click()
    expect(header).to_contain_text("closed")

    incident = incident_for(admin, f"ConsoleCRM{unique}")
    assert incident["status"] == "closed"
    changes = [e["change"] for e in incident["timeline"]]
    for change in ("acknowledged", "update_posted", "mitigation_added", "resolved", "closed"):
        assert change in changes, changes
    assert incident["playbook"]["steps"][0]["done"] is True
    closed = next(e for e in incident["timeline"] if e["change"] == "closed")
    assert closed["actor"] == "test-platform-admin" and "Sync ran clean twice" in closed["summary"]


def test_every_control_has_a_label(page_for, platform, admin):
    declared = admin.post("/v1/incidents", json={"title": "label audit", "service": "checkout-api"}).json()
    page = page_for("platform-admin")
    for path in ("/", f"/incidents/{declared['incident_id']}", f"/incidents/{declared['incident_id']}/postmortem",
                 "/declare", "/oncall", "/numbers"):
        page.goto(f"{platform.web_url}{path}")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
            'input:not([type=hidden]), select, textarea, button')].filter(el =>
              !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim()
            ).map(el => el.outerHTML.slice(0, 80))""")
        assert unlabelled == [], (path, unlabelled)


def test_the_postmortem_is_written_and_completed_in_the_editor(page_for, platform, admin):
    declared = admin.post("/v1/incidents", json={"title": "Checkout errors", "service": "checkout-api",
                                                 "severity": "SEV2"}).json()
    iid = declared["incident_id"]
    assert admin.post(f"/v1/incidents/{iid}/resolve", json={"note": "rolled back"}).status_code == 200
    page = page_for("observability-engineer")
    page.goto(f"{platform.web_url}/incidents/{iid}/postmortem")
    expect(page.get_by_role("button", name="Complete postmortem")).to_have_count(0)
    expect(page.locator("#complete-h + p")).to_contain_text("summary")  # the lifecycle's reason, not offered
    page.get_by_label("Summary").fill("A bad deploy broke checkout for 20 minutes.")
    page.get_by_label("Impact").fill("5% of checkouts failed.")
    page.get_by_label("Root cause").fill("A config flag defaulted to off.")
    page.get_by_role("button", name="Save postmortem").click()
    expect(page.get_by_role("status")).to_contain_text("Postmortem saved")
    form = page.get_by_role("form", name="Add an action item")
    form.get_by_label("Title").fill("Alert on checkout error rate")
    form.get_by_label("Owner").fill("dave")
    form.get_by_label("Due date").fill("2027-01-15")
    page.get_by_role("button", name="Add action item").click()
    expect(page.locator("#item-AI-1")).to_contain_text("Alert on checkout error rate")
    page.get_by_label("Status of AI-1").select_option("in_progress")
    page.locator("#item-AI-1").get_by_role("button", name="Set").click()
    expect(page.get_by_role("status")).to_contain_text("AI-1 updated")
    page.get_by_role("button", name="Complete postmortem").click()
    expect(page.get_by_role("status")).to_contain_text("Postmortem completed")
    expect(page.locator(".tag.pm-completed")).to_be_visible()
    postmortem = admin.get(f"/v1/incidents/{iid}/postmortem").json()
    assert postmortem["status"] == "completed"
    assert postmortem["root_cause"] == "A config flag defaulted to off."
    assert [(i["owner"], i["due_date"], i["status"]) for i in postmortem["action_items"]] == \
        [("dave", "2027-01-15", "in_progress")]


def test_forbidden_commands_are_not_offered_and_the_api_reason_is_shown(page_for, platform, admin):
    iid = admin.post("/v1/incidents", json={"title": "Forbidden commands", "service": "billing-worker"}).json()["incident_id"]
    page = page_for("platform-admin")
    page.goto(f"{platform.web_url}/incidents/{iid}")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    for forbidden in ("Close", "Reopen"):  # the lifecycle forbids them while triggered
        expect(page.get_by_role("button", name=forbidden, exact=True)).to_have_count(0)
    attempt = page.request.post(f"{platform.web_url}/incidents/{iid}/commands/close",
                                form={"csrf_token": csrf_of(page), "verification": "forced"})
    assert attempt.status == 409
    assert "cannot close an incident that is triggered" in attempt.text()

    engineer = page_for("observability-engineer")
    engineer.goto(f"{platform.web_url}/incidents/{iid}")
    expect(engineer.get_by_role("button", name="Post update")).to_be_visible()
    for forbidden in ("Acknowledge", "Resolve", "Add mitigation"):  # the role may not
        expect(engineer.get_by_role("button", name=forbidden, exact=True)).to_have_count(0)
    attempt = engineer.request.post(f"{platform.web_url}/incidents/{iid}/commands/acknowledge",
                                    form={"csrf_token": csrf_of(engineer)})
    assert attempt.status == 403
    assert "may not respond" in attempt.text()
    assert admin.get(f"/v1/incidents/{iid}").json()["status"] == "triggered"


def test_a_request_without_the_csrf_token_is_refused(page_for, platform, admin):
    iid = admin.post("/v1/incidents", json={"title": "CSRF", "service": "billing-worker"}).json()["incident_id"]
    page = page_for("platform-admin")
    page.goto(f"{platform.web_url}/incidents/{iid}")
    for form in ({}, {"csrf_token": "forged"}):
        refused = page.request.post(f"{platform.web_url}/incidents/{iid}/commands/acknowledge", form=form)
        assert refused.status == 403
        assert "CSRF" in refused.text()
    refused = page.request.post(f"{platform.web_url}/sign-out", form={})
    assert refused.status == 403
    assert admin.get(f"/v1/incidents/{iid}").json()["status"] == "triggered"
    page.reload()
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()  # still signed in, nothing done


def test_a_restricted_security_incident_is_shown_only_to_a_security_admin(page_for, platform, intake, tokens, admin):
    unique = uuid.uuid4().hex[:8]
    engineer = page_for("observability-engineer")
    _live(engineer)
    # The engineer's live stream: whatever it signals must never name the security incident.
    stream = signed_in_client(platform.web_url, tokens["observability-engineer"])
    security = signed_in_client(platform.web_url, tokens["security-admin"])
    with stream.stream("GET", "/live/board", timeout=60) as events:
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: live"
        _alert(intake, service="checkout-api", summary=f"Credential stuffing {unique}", severity="critical",
               labels={"alertname": f"ConsoleSec{unique}", "category": "security"})
        secret = wait_until(lambda: next(iter(_ids(security, f"Credential stuffing {unique}")), None),
                            what="the security incident in the security admin's board")
        _alert(intake, service="billing-worker", summary=f"Billing lag {unique}", severity="warning",
               labels={"alertname": f"ConsoleOps{unique}"})
        billing = incident_for(admin, f"ConsoleOps{unique}")["incident_id"]
        seen: list[str] = []
        for line in lines:
            if line.startswith("data:"):
                seen += json.loads(line[5:].strip())
                if billing in seen:
                    break
        assert secret not in seen
    expect(engineer.locator("#board-rows")).to_contain_text(f"Billing lag {unique}", timeout=30_000)
    expect(engineer.locator("#board-rows")).not_to_contain_text(f"Credential stuffing {unique}")
    engineer.goto(f"{platform.web_url}/incidents/{secret}")
    expect(engineer.get_by_role("alert")).to_contain_text(f"no incident {secret}")
    expect(engineer.get_by_role("alert")).not_to_contain_text("Credential stuffing")

    admin_page = page_for("security-admin")
    admin_page.get_by_label("Search").fill(unique)
    expect(admin_page.locator("#board-rows")).to_contain_text(f"Credential stuffing {unique}", timeout=15_000)
    admin_page.goto(f"{platform.web_url}/incidents/{secret}")
    expect(admin_page.locator("#incident-header")).to_contain_text("restricted")


def _ids(client: httpx.Client, text: str) -> list[str]:
    page = client.get("/", params={"q": text, "view": "all"}).text
    return re.findall(r'data-incident="(INC-[0-9-]+)"', page)

