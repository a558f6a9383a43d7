"""The intake routes as FastAPI sees them: for the OpenAPI document, and served by the same
handlers should a request reach FastAPI (the edge in front normally answers them)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from . import intake
from .body import Answer, Body
from .formats.pagerduty import PagerDutyAccepted
from .security import client_of

router = APIRouter(tags=["alerts"])


class Accepted(BaseModel):
    status: str = "accepted"
    dedup_keys: list[str]


def _body_schema(ref: str) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}}


async def _serve(request: Request, handler) -> Response:
    # An ApiError raised here is answered by errors.py, as for every other route.
    body = Body(request.receive, request.headers.get("content-length"))
    answer: Answer = await handler(request.app.state.runtime, request.headers.get("authorization", ""), body,
                                   client_of(request))
    return Response(answer.body, status_code=answer.status, headers=answer.headers, media_type="application/json")


@router.post(
    "/v1/alerts",
    status_code=202,
    response_model=Accepted,
    summary="Send one native alert or a list of them (integration key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [
                {"$ref": "#/components/schemas/NativeAlert"},
                {"type": "array", "items": {"$ref": "#/components/schemas/NativeAlert"}, "minItems": 1},
            ]}}},
        }
    },
)
async def post_alerts(request: Request) -> Response:
    return await _serve(request, intake.native)


@router.post(
    "/v1/integrations/alertmanager",
    status_code=202,
    response_model=Accepted,
    summary="Prometheus Alertmanager (payload version 4) or Grafana alerting webhook (integration key)",
    description=(
        "Each alert is handled by its own status; the alert's fingerprint is its dedup key. The integration's "
        "`label_names` say which labels name the service, team and severity (defaults `service`, `team`, "
        "`severity`); the annotations `summary`, `description` and `runbook_url` travel with the incident. "
        "A throttled integration is answered 503 with Retry-After, which Alertmanager retries."
    ),
    openapi_extra=_body_schema("#/components/schemas/AlertmanagerPayload"),
)
async def post_alertmanager(request: Request) -> Response:
    return await _serve(request, intake.alertmanager_webhook)


@router.post(
    "/v2/enqueue",
    status_code=202,
    response_model=PagerDutyAccepted,
    summary="PagerDuty Events API v2 (routing_key is the integration key)",
    description=(
        "`trigger`, `acknowledge` and `resolve` as PagerDuty defines them: a trigger without `dedup_key` gets one, "
        "returned in the answer; acknowledge and resolve need only the `dedup_key`. At most 512 KB."
    ),
    openapi_extra=_body_schema("#/components/schemas/PagerDutyEvent"),
)
async def post_pagerduty(request: Request) -> Response:
    return await _serve(request, intake.pagerduty_events)
