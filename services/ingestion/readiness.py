"""Ingestion's own probe: what an alert's 202 needs is the producer's acknowledged send."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone

from shared import catalogue as cat
from shared.kafka.json_producer import JsonProducer
from shared.kafka.probes import PROBE_TIMEOUT
from shared.messages import Probe

SERVICE = "ingestion"


async def probe_through_producer(producer: JsonProducer) -> dict:
    """Send a probe to health.probes with acks=all, as intake sends alerts; ready once acknowledged.

    Ingestion consumes nothing, so there is no consumer to see the probe back: the services
    that consume (the recorder among them) prove their own path on their own /readyz.
    """
    probe = Probe(probe_id=uuid.uuid4().hex, service=SERVICE, sent_at=datetime.now(timezone.utc))
    started = time.monotonic()
    try:
        await asyncio.wait_for(producer.send(cat.HEALTH_PROBES.name, SERVICE, probe), PROBE_TIMEOUT)
    except asyncio.TimeoutError:
        return {"ready": False, "reason": f"probe not acknowledged by the broker within {PROBE_TIMEOUT:.0f}s"}
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return {"ready": False, "reason": f"probe send failed: {type(exc).__name__}: {exc}"}
    return {"ready": True, "probe_ms": round((time.monotonic() - started) * 1000, 1)}
