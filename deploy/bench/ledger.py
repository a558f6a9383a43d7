"""What the bench was told it delivered (2xx answers), against what the incidents record."""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg

RECORDED = """
    SELECT service, record->'labels'->>'alertname' AS name, sum(alert_count)::bigint AS alerts
    FROM incidents WHERE service LIKE 'bench-%' GROUP BY 1, 2
"""
TOTAL = "SELECT coalesce(sum(alert_count), 0) FROM incidents WHERE service LIKE 'bench-%'"


class Ledger:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.accepted: Counter = Counter()  # (service, alert name) -> alerts answered 2xx

    def add(self, accepted: Counter | dict) -> None:
        self.accepted.update(accepted)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def audit_events(self) -> int:
        """Audit events recorded so far (each is fanned out to every consumer of incident.audit)."""
        conn = await self.connect()
        try:
            return await conn.fetchval("SELECT count(*) FROM audit_events")
        finally:
            await conn.close()

    async def recorded(self, conn: asyncpg.Connection) -> Counter:
        return Counter({(r["service"], r["name"]): r["alerts"] for r in await conn.fetch(RECORDED)})

    async def drain(self, timeout: float, quiet_for: float = 1.0) -> dict:
        """Wait until every accepted alert is counted on its incident and the audit trail is
        quiet for ``quiet_for`` seconds, or ``timeout``; say which, and how long it took."""
        conn = await asyncpg.connect(self.database_url)
        started = time.perf_counter()
        expected = sum(self.accepted.values())
        try:
            last_events, quiet_since, recorded = -1, time.perf_counter(), 0
            while time.perf_counter() - started < timeout:
                recorded = await conn.fetchval(TOTAL)
                events = await conn.fetchval("SELECT count(*) FROM audit_events")
                if events != last_events or recorded < expected:
                    last_events, quiet_since = events, time.perf_counter()
                elif time.perf_counter() - quiet_since >= quiet_for:
                    return {"drained": True, "seconds": round(time.perf_counter() - started, 2)}
                await asyncio.sleep(0.1)
            return {"drained": False, "seconds": round(time.perf_counter() - started, 2),
                    "unrecorded": expected - recorded}
        finally:
            await conn.close()

    async def wait_recorded(self, keys: Counter, timeout: float) -> float | None:
        """Seconds until the incidents of ``keys`` count every alert accepted for them
        (None: not within ``timeout``)."""
        conn = await asyncpg.connect(self.database_url)
        started = time.perf_counter()
        services = sorted({service for service, _ in keys})
        names = sorted({name for _, name in keys})
        expected = sum(self.accepted[k] for k in keys)
        try:
            while time.perf_counter() - started < timeout:
                recorded = await conn.fetchval(
                    "SELECT coalesce(sum(alert_count), 0) FROM incidents WHERE service = ANY($1) AND "
                    "record->'labels'->>'alertname' = ANY($2)", services, names)
                if recorded >= expected:
                    return time.perf_counter() - started
                await asyncio.sleep(0.05)
            return None
        finally:
            await conn.close()

    async def balance(self) -> dict:
        """Per correlation key: alerts accepted but not recorded (lost), recorded beyond accepted (double)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            recorded = await self.recorded(conn)
        finally:
            await conn.close()
        keys = set(self.accepted) | set(recorded)
        lost = sum(max(0, self.accepted[k] - recorded[k]) for k in keys)
        double = sum(max(0, recorded[k] - self.accepted[k]) for k in keys)
        return {"accepted": sum(self.accepted.values()), "recorded": sum(recorded.values()), "lost": lost,
                "double_counted": double, "keys": len(keys)}
