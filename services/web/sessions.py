"""Signed-in sessions, kept in this process: the browser holds only a random session id.

The user's token never goes back to the browser after sign-in; the cookie that names
the session is HttpOnly and SameSite=Strict, and every form carries the session's
CSRF token. A restart of the console signs everyone out (sessions live in memory).
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"  # double-submit token for the sign-in form itself
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_MAX_SESSIONS = 10_000


@dataclass
class Session:
    session_id: str
    token: str = field(repr=False)
    name: str
    role: str
    permissions: frozenset[str]
    csrf: str = field(repr=False)
    last_seen: float

    def may(self, permission: str) -> bool:
        return permission in self.permissions


class SessionStore:
    def __init__(self, idle_seconds: float, clock=time.monotonic) -> None:
        self._sessions: dict[str, Session] = {}
        self._idle, self._clock = idle_seconds, clock

    def create(self, token: str, name: str, role: str, permissions: list[str]) -> Session:
        self._forget_idle()
        if len(self._sessions) >= _MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            self._sessions.pop(oldest.session_id, None)
        session = Session(
            session_id=secrets.token_urlsafe(32), token=token, name=name, role=role,
            permissions=frozenset(permissions), csrf=secrets.token_urlsafe(32), last_seen=self._clock(),
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle:
            self._sessions.pop(session_id, None)
            return None
        session.last_seen = now
        return session

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def _forget_idle(self) -> None:
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if now - s.last_seen > self._idle]:
            self._sessions.pop(sid, None)


def same_secret(given: str | None, expected: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())
