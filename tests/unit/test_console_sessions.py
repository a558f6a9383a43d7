"""Console sessions: random ids, idle expiry, sign-out, and the CSRF comparison."""
from __future__ import annotations

from services.web.rendering import Times, http_url
from services.web.sessions import SessionStore, same_secret


def test_sessions_expire_when_idle_and_end_at_sign_out():
    clock = [0.0]
    store = SessionStore(idle_seconds=60, clock=lambda: clock[0])
    session = store.create("inc_secret", "alice", "platform-admin", ["read"])
    assert store.get(session.session_id) is session and session.csrf != session.session_id
    assert "inc_secret" not in repr(session)  # never in a log line
    clock[0] = 59
    assert store.get(session.session_id) is session
    clock[0] = 200
    assert store.get(session.session_id) is None
    again = store.create("inc_secret", "alice", "platform-admin", ["read"])
    store.drop(again.session_id)
    assert store.get(again.session_id) is None and store.get(None) is None and store.get("forged") is None


def test_csrf_tokens_compare_exactly():
    assert same_secret("abc", "abc")
    assert not same_secret("abd", "abc") and not same_secret("", "abc") and not same_secret(None, "abc")


def test_times_are_in_the_viewers_zone_with_utc_on_hover():
    html = Times("America/New_York").when("2026-07-01T12:00:00+00:00")
    assert ">2026-07-01 08:00 EDT<" in html and 'title="2026-07-01 12:00:00 UTC"' in html
    assert ">2026-07-01 12:00<" in Times("Not/AZone").when("2026-07-01T12:00:00Z")


def test_only_web_links_are_rendered_as_links():
    assert http_url("https://runbooks.example.com/x") == "https://runbooks.example.com/x"
    assert http_url("javascript:alert(1)") == "#" and http_url(None) == "#"
