"""Bootstrap .local/credentials.env: one token per role and an integration key (mode 0600).

Kept when every credential in it still authenticates (the database may have been
reset, in which case new ones are made). Only hashes are stored in PostgreSQL.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path

import asyncpg

from shared.auth import Role
from shared.db.migrate import migrate
from shared.db.tokens import authenticate, create_token
from shared.settings import REPO_ROOT, load_settings

VARIABLES = {
    "INCIDENT_TOKEN_PLATFORM_ADMIN": (Role.PLATFORM_ADMIN, "local-platform-admin"),
    "INCIDENT_TOKEN_OBSERVABILITY_ENGINEER": (Role.OBSERVABILITY_ENGINEER, "local-observability-engineer"),
    "INCIDENT_TOKEN_SECURITY_ADMIN": (Role.SECURITY_ADMIN, "local-security-admin"),
    "INCIDENT_TOKEN_COMPLIANCE_OFFICER": (Role.COMPLIANCE_OFFICER, "local-compliance-officer"),
    "INCIDENT_INTEGRATION_KEY": (Role.INTEGRATION, "default"),
}


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        parts = shlex.split(value)
        values[name.strip()] = parts[0] if parts else ""
    return values


async def ensure(path: Path, database_url: str, api_url: str) -> bool:
    """True when new credentials were written."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        current = read_env_file(path)
        valid = True
        for variable, (role, _) in VARIABLES.items():
            secret = current.get(variable)
            principal = await authenticate(conn, secret) if secret else None
            valid = valid and principal is not None and principal.role is role \
                and not principal.expired(datetime.now(timezone.utc))
        if valid:
            return False
        lines = [
            "# Local credentials for this machine's stack (made by make up / make run). Do not commit.",
            f"export INCIDENT_API_URL={shlex.quote(api_url)}",
        ]
        for variable, (role, name) in VARIABLES.items():
            _, secret = await create_token(conn, role, name)
            lines.append(f"export {variable}={shlex.quote(secret)}")
        lines.append("export INCIDENT_TOKEN=\"$INCIDENT_TOKEN_PLATFORM_ADMIN\"")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return True
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=REPO_ROOT / ".local" / "credentials.env")
    args = parser.parse_args()
    settings = load_settings()
    api_url = f"http://{settings.ingestion_host}:{settings.ingestion_port}"
    written = asyncio.run(ensure(args.file, settings.database_url, api_url))
    print(f"credentials: {args.file} ({'new' if written else 'kept'}; mode 0600)")


if __name__ == "__main__":
    main()
