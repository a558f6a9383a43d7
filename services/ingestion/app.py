"""Ingestion: the HTTP edge (FastAPI) with an aiokafka producer and the PostgreSQL recorder."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from shared import catalogue as cat
from shared.auth import Permission, Role, allowed
from shared.db.migrate import migrate
from shared.db.pool import create_pool
from shared.db.tokens import create_token
from shared.domain.organisation import Organisation
from shared.kafka.json_producer import JsonProducer
from shared.kafka.liveness import STALLS, Watchdog
from shared.kafka.probes import Probes
from shared.settings import Settings

from . import errors, incidents, intake_routes, openapi
from .edge import IntakeEdge
from .recorder import Recorder
from .runtime import Runtime
from .security import needs, require

log = logging.getLogger("ingestion")


class TokenRequest(BaseModel):
    role: Role
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@:-]+$")


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
        recorder = Recorder(settings.kafka_bootstrap, f"{settings.app_prefix}-recorder", pool, producer,
                            Probes("ingestion"))
        await recorder.start()
        app.state.runtime = Runtime(settings=settings, org=org, pool=pool, producer=producer, recorder=recorder)
        watchdog = asyncio.create_task(Watchdog(settings.kafka_bootstrap, settings.liveness_seconds, "ingestion").run())
        log.info("ingestion listening on http://%s:%s", settings.ingestion_host, settings.ingestion_port)
        try:
            yield
        finally:
            watchdog.cancel()
            await recorder.stop()
            await producer.stop()
            await pool.close()

    app = FastAPI(
        title="Incident Handling API",
        version="0.1.0",
        description="Alert intake (native, Alertmanager, Grafana, PagerDuty Events v2) and the incidents API.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(intake_routes.router)
    app.include_router(incidents.router)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"],
             summary="Kafka and PostgreSQL reachable, and a probe went through the producer and the recorder")
    async def readyz(request: Request):
        rt: Runtime = request.app.state.runtime
        kafka = await rt.producer.connected()
        try:
            async with rt.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1")
            database = True
        except Exception:  # noqa: BLE001 - readiness reports, never raises
            database = False
        body: dict = {"kafka": kafka, "database": database, "recorder": rt.recorder.healthy}
        stalled = STALLS.oldest()
        if stalled is not None and stalled[1] > settings.liveness_seconds:
            body["reason"] = f"unhealthy: {stalled[0]} running for {stalled[1]:.0f}s"
        elif kafka and rt.recorder.healthy:
            async def send(probe, partition):
                await rt.producer.send(cat.HEALTH_PROBES.name, "ingestion", probe, partition=partition)

            probe = await rt.recorder.probes.round_trip(rt.recorder.probe_partitions(), send)
            body["probe"] = probe
        ready = all(body[k] for k in ("kafka", "database", "recorder")) and body.get("probe", {}).get("ready", False)
        return JSONResponse({"status": "ready" if ready else "not ready", **body}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="This process's own Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/tokens", status_code=201, tags=["tokens"], summary="Create a token (shown once)",
              dependencies=[needs(Permission.MANAGE_TOKENS)])
    async def create_api_token(request: Request, body: TokenRequest) -> dict:
        await require(request, Permission.MANAGE_TOKENS)
        rt: Runtime = request.app.state.runtime
        async with rt.pool.acquire() as conn:
            principal, secret = await create_token(conn, body.role, body.name)
        return {"token_id": principal.token_id, "name": principal.name, "role": principal.role.value, "token": secret}

    @app.get("/v1/me", tags=["tokens"], summary="Who this token is: name, role and what the role may do",
             dependencies=[needs(Permission.READ)])
    async def who_am_i(request: Request) -> dict:
        principal = await require(request, Permission.READ)
        granted = sorted(p.value for p in Permission if allowed(principal.role, p))
        return {"name": principal.name, "role": principal.role.value, "permissions": granted}

    openapi.install(app)
    return app
