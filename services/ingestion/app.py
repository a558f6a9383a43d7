"""Ingestion: the HTTP edge (FastAPI) with an aiokafka producer; reads from PostgreSQL, which the recorder writes."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.auth import Permission, allowed
from shared.background import essential
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.domain.organisation import Organisation
from shared.kafka.json_producer import JsonProducer
from shared.kafka.liveness import STALLS, Watchdog
from shared.settings import Settings

from . import (
    errors, feeds_api, heartbeats_api, incidents, intake_routes, maintenance_api, oncall_api, openapi, opsgenie_api,
    tokens_api,
)
from .edge import IntakeEdge
from .readiness import probe_through_producer
from .recorded import RecordedListener
from .runtime import Runtime
from .security import needs, require

log = logging.getLogger("ingestion")


def create_server(settings: Settings, org: Organisation) -> IntakeEdge:
    """What uvicorn serves: the intake edge in front of the application."""
    return IntakeEdge(create_app(settings, org))


def create_app(settings: Settings, org: Organisation) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pool = await create_pool(settings.database_url)
        async with pool.acquire() as conn:
            await migrate(conn)
        producer = JsonProducer(settings.kafka_bootstrap, client_id=f"{settings.app_prefix}-ingestion")
        await producer.start()
        recorded = RecordedListener(settings.database_url)
        await recorded.start()
        app.state.runtime = Runtime(settings=settings, org=org, pool=pool, producer=producer, recorded=recorded)
        watchdog = essential(Watchdog(settings.kafka_bootstrap, settings.liveness_seconds, "ingestion").run(),
                             "liveness watchdog")
        log.info("ingestion listening on http://%s:%s", settings.ingestion_host, settings.ingestion_port)
        try:
            yield
        finally:
            watchdog.cancel()
            await recorded.stop()
            await producer.stop()
            await pool.close()

    app = FastAPI(
        title="Incident Handling API",
        version="0.1.0",
        description="Alert intake (native, Alertmanager, Grafana, PagerDuty Events v2, the Opsgenie Alert API), "
                    "the incidents API and on-call.",
        lifespan=lifespan,
    )
    errors.install(app)
    opsgenie_api.install(app)
    app.include_router(intake_routes.router)
    app.include_router(opsgenie_api.router)
    app.include_router(heartbeats_api.router)
    app.include_router(oncall_api.router)
    app.include_router(maintenance_api.router)
    app.include_router(tokens_api.router)
    app.include_router(feeds_api.router)
    app.include_router(incidents.router)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"],
             summary="Kafka reachable and a probe accepted by the broker through this process's producer")
    async def readyz(request: Request):
        # Intake needs the broker only: PostgreSQL (reads, commands) is reported, not required,
        # and the recorder answers for itself on its own /readyz.
        rt: Runtime = request.app.state.runtime
        kafka = await rt.producer.connected()
        try:
            async with rt.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            database = True
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            database = False
        body: dict = {"kafka": kafka, "database": database}
        stalled = STALLS.oldest()
        if stalled is not None and stalled[1] > settings.liveness_seconds:
            body["reason"] = f"unhealthy: {stalled[0]} running for {stalled[1]:.0f}s"
        elif kafka:
            body["probe"] = await probe_through_producer(rt.producer)
        ready = kafka and body.get("probe", {}).get("ready", False)
        return JSONResponse({"status": "ready" if ready else "not ready", **body}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="This process's own Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/me", tags=["tokens"], summary="Who this token is: name, role and what the role may do",
             dependencies=[needs(Permission.READ)])
    async def who_am_i(request: Request) -> dict:
        principal = await require(request, Permission.READ)
        granted = sorted(p.value for p in Permission if allowed(principal.role, p))
        return {"name": principal.name, "role": principal.role.value, "permissions": granted}

    openapi.install(app)
    return app
