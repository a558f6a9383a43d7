"""The recorder process: the consumer loop, its producer and pool, and a small HTTP endpoint.

Composition root. ``serve`` runs the loop and the HTTP server side by side until either
ends: SIGTERM ends the server and then the loop, cleanly; a loop that fails ends the
server and the process with an error, so that its supervisor starts a fresh one (never a
dead loop behind a green process).
"""
from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import catalogue as cat
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.kafka.json_producer import JsonProducer
from shared.kafka.liveness import STALLS, Watchdog
from shared.kafka.probes import Probes
from shared.settings import Settings

from .consumer import SERVICE, RecorderLoop, consumer_for
from .writer import BatchWriter

log = logging.getLogger("recorder")


def http_app(loop: RecorderLoop, settings: Settings) -> FastAPI:
    app = FastAPI(title="Recorder", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        """Ready when a probe sent through this process's producer to a health.probes partition
        it owns comes back through its consumer: fetch loop, database writes and producer all move."""
        stalled = STALLS.oldest()
        if stalled is not None and stalled[1] > settings.liveness_seconds:
            body = {"ready": False, "reason": f"unhealthy: {stalled[0]} running for {stalled[1]:.0f}s"}
        elif loop.writer.outage_since is not None:
            body = {"ready": False, "reason": "PostgreSQL unavailable: waiting for it to write the batch"}
        else:
            async def send(probe, partition):
                await loop.producer.send(cat.HEALTH_PROBES.name, SERVICE, probe, partition=partition)

            body = await loop.probes.round_trip(loop.probe_partitions(), send)
        return JSONResponse({"service": SERVICE, **body}, status_code=200 if body["ready"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


async def serve(settings: Settings) -> None:
    pool = await create_pool(settings.database_url)
    async with pool.acquire() as conn:
        await migrate(conn)
    producer = JsonProducer(settings.kafka_bootstrap, client_id=f"{settings.app_prefix}-recorder")
    await producer.start()
    consumer = consumer_for(settings.kafka_bootstrap, f"{settings.app_prefix}-recorder", settings.worker)
    await consumer.start()
    loop = RecorderLoop(consumer, BatchWriter(pool, settings.alert_refs_per_incident, settings.database_url), producer, Probes(SERVICE))
    server = uvicorn.Server(uvicorn.Config(
        http_app(loop, settings), host=settings.recorder_host, port=settings.recorder_port,
        log_level=settings.log_level.lower(), access_log=False, lifespan="off", loop="none",
    ))

    def stop(signum, frame) -> None:
        server.should_exit = True

    # Ours, not the default: uvicorn restores the handler it found and raises the signal again
    # after it stops serving, and the default action would end the process before the cleanup below.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    recording = asyncio.create_task(loop.run(), name="recorder loop")
    watchdog = asyncio.create_task(Watchdog(settings.kafka_bootstrap, settings.liveness_seconds, SERVICE).run(),
                                   name="liveness watchdog")
    serving = asyncio.create_task(server.serve(), name="recorder http")
    log.info("recorder listening on http://%s:%s", settings.recorder_host, settings.recorder_port)
    try:
        done, _ = await asyncio.wait({recording, serving, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        if recording in done:
            server.should_exit = True
            await serving
            failure = recording.exception() or RuntimeError("the recorder loop ended")
            log.critical("recorder loop failed: %s: %s; exiting so that the supervisor restarts it",
                         type(failure).__name__, failure, exc_info=failure)
            raise failure  # the process exits non-zero
    finally:
        for task in (recording, watchdog, serving):
            task.cancel()
        await asyncio.gather(recording, watchdog, serving, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        await pool.close()
