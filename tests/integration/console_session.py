"""The web console from a test's side: a real Chromium (Debian's, through executable_path)
and signed-in HTTP sessions for what a browser cannot observe (the SSE stream, timings)."""
from __future__ import annotations

import re

import httpx

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def sign_in_page(page, web_url: str, token: str) -> None:
    page.goto(f"{web_url}/sign-in")
    page.get_by_label("User token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web_url}/")


def csrf_of(page) -> str:
    return page.locator("form[action='/sign-out'] input[name='csrf_token']").get_attribute("value")


def signed_in_client(web_url: str, token: str) -> httpx.Client:
    """An HTTP client holding a console session cookie, signed in the way the form does it."""
    client = httpx.Client(base_url=web_url, timeout=30)
    form = client.get("/sign-in").text
    sign_in_token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post("/sign-in", data={"csrf_token": sign_in_token, "token": token, "next": "/"})
    assert answer.status_code == 303, answer.text[:300]
    return client
