"""The watchdog's view of the broker's port (shared/kafka/liveness.py): an outage is logged as
it starts and ends, and work that waited through it is not taken for a stall afterwards."""
from __future__ import annotations

import asyncio
import logging
import socket
import time

from shared.kafka.liveness import Stalls, Watchdog


def test_an_outage_is_logged_once_each_way_and_waiting_through_it_is_no_stall(caplog):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    stalls = Stalls()
    watchdog = Watchdog(f"127.0.0.1:{port.getsockname()[1]}", bound=30.0, service="triage", stalls=stalls)
    stalls.running[0] = ("offset commit (producer flush, then commit)", time.monotonic() - 100.0)

    async def go():
        with caplog.at_level(logging.INFO, logger="liveness"):
            for _ in range(3):
                await watchdog.watch_broker()
            assert await watchdog.check() is None  # the broker refuses: an outage, not a stall
            port.listen()
            await watchdog.watch_broker()
            await watchdog.watch_broker()
            # The commit began 100 s ago, but the broker has answered for a moment only, and
            # a broker that has just come back is given one bound to finish starting.
            assert watchdog.oldest()[1] == 0.0
            assert await watchdog.check() is None
            watchdog.broker_back_at -= 40.0  # back for 40 s: timed from 30 s after its return
            assert 9.0 < watchdog.oldest()[1] < 11.0
            assert await watchdog.check() is None
            watchdog.broker_back_at -= 21.0
            assert "has not finished in 3" in await watchdog.check()  # a stall again

    try:
        asyncio.run(go())
    finally:
        port.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "liveness" and "Kafka broker" in r.getMessage()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Kafka broker (seen from triage) unavailable: ") and "refuses connections" in lines[0]
    assert lines[1].startswith("Kafka broker (seen from triage) back after ")
