"""Readiness probes in flight: sent through a service's producer, seen by its consumer."""
from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import datetime, timezone

from ..messages import Probe

PROBE_TIMEOUT = 5.0


class Probes:
    """Probes sent and not yet seen back, by id."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.waiting: dict[str, asyncio.Future] = {}
        self._turn = itertools.count()

    def seen(self, probe: Probe) -> None:
        future = self.waiting.get(probe.probe_id)
        if probe.service == self.service and future is not None and not future.done():
            future.set_result(time.monotonic())

    async def round_trip(self, owned: list[int], send) -> dict:
        """Send a probe with ``send(probe, partition)`` to one of the ``owned`` partitions of
        ``health.probes`` (taken in turn) and wait until the consumer has seen it."""
        if not owned:
            return {"ready": False, "reason": "no health.probes partition assigned to this worker yet"}
        partition = sorted(owned)[next(self._turn) % len(owned)]
        probe = Probe(probe_id=uuid.uuid4().hex, service=self.service, sent_at=datetime.now(timezone.utc))
        future = self.waiting[probe.probe_id] = asyncio.get_running_loop().create_future()
        started = time.monotonic()
        try:
            await asyncio.wait_for(send(probe, partition), PROBE_TIMEOUT)
            seen_at = await asyncio.wait_for(future, PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            return {"ready": False, "reason": f"probe on partition {partition} not seen back within {PROBE_TIMEOUT:.0f}s"}
        finally:
            self.waiting.pop(probe.probe_id, None)
        return {"ready": True, "probe_ms": round((seen_at - started) * 1000, 1), "partition": partition}
