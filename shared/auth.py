"""Roles, what each may do, and how secrets are kept (hashed, never stored in clear)."""
from __future__ import annotations

import hashlib
import secrets
from enum import Enum


class Role(str, Enum):
    PLATFORM_ADMIN = "platform-admin"
    OBSERVABILITY_ENGINEER = "observability-engineer"
    SECURITY_ADMIN = "security-admin"
    COMPLIANCE_OFFICER = "compliance-officer"
    INTEGRATION = "integration"


class Permission(str, Enum):
    SEND_ALERTS = "send_alerts"
    READ = "read"
    DECLARE = "declare"
    RESPOND = "respond"  # acknowledge, mitigate, resolve, close, reopen, severity, commander
    UPDATE = "update"  # post updates, add evidence
    POSTMORTEM = "postmortem"
    EXPORT = "export"
    READ_RESTRICTED = "read_restricted"  # security incidents
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_ONCALL = "manage_oncall"  # overrides and maintenance windows: who is paged, and when not


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset(
        {Permission.READ, Permission.DECLARE, Permission.RESPOND, Permission.UPDATE, Permission.POSTMORTEM,
         Permission.EXPORT, Permission.MANAGE_TOKENS, Permission.MANAGE_ONCALL}
    ),
    Role.OBSERVABILITY_ENGINEER: frozenset({Permission.READ, Permission.UPDATE, Permission.POSTMORTEM}),
    Role.SECURITY_ADMIN: frozenset(
        {Permission.READ, Permission.DECLARE, Permission.RESPOND, Permission.UPDATE, Permission.POSTMORTEM,
         Permission.EXPORT, Permission.READ_RESTRICTED, Permission.MANAGE_ONCALL}
    ),
    Role.COMPLIANCE_OFFICER: frozenset({Permission.READ, Permission.EXPORT}),
    Role.INTEGRATION: frozenset({Permission.SEND_ALERTS}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in GRANTS.get(role, frozenset())


def hash_secret(secret: str) -> str:
    # Tokens are 32 random bytes: a plain SHA-256 cannot be brute-forced, and a
    # fast hash keeps alert intake cheap (no bcrypt per request).
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_user_token() -> str:
    return "inc_" + secrets.token_urlsafe(32)


def new_integration_key() -> str:
    # PagerDuty routing keys are 32 characters; tools validate that length.
    return secrets.token_hex(16)
