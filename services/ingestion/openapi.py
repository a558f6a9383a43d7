"""The OpenAPI document as the API really behaves.

FastAPI documents what it can see: typed bodies and a 422 it never sends here
(errors.py answers 400). This adds the bodies parsed by hand (native alerts,
webhooks, PagerDuty events), the bearer credential, the error statuses each
operation can answer and the shape of what the incident reads return. A
property-based test (tests/integration/test_openapi.py) holds it to the truth.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from fastapi import FastAPI
from pydantic import BaseModel

from shared.domain.incident_summary import IncidentSummary
from shared.messages import NativeAlert

from .formats.alertmanager import AlertmanagerPayload
from .formats.opsgenie import OpsgenieAccepted, OpsgenieAction, OpsgenieAlert, OpsgenieNote, OpsgenieRefused
from .formats.pagerduty import PagerDutyAccepted, PagerDutyEvent, PagerDutyRefused

_REF = "#/components/schemas/{model}"
_PUBLIC = {"/healthz", "/readyz", "/v2/enqueue"}
_INTAKE = {"/v1/alerts", "/v1/integrations/alertmanager"}
_INCIDENT_PATH = re.compile(r"^/v1/incidents/\{incident_id\}")
# Opsgenie-compatible paths: the GenieKey header, and Opsgenie's error shape.
_OPSGENIE = re.compile(r"^/v2/(alerts|heartbeats)")
_ONCALL = ("/v1/oncall", "/v1/maintenance")
# Calendar feeds: the credential is a feed token in the URL (calendar apps send no headers).
_FEEDS = re.compile(r"^/v1/(rotations|people)/\{[a-z]+\}\.ics$")


class Error(BaseModel):
    error: str
    detail: Any = None


class TokenCreated(BaseModel):
    token_id: str
    name: str
    role: str
    expires_at: str | None = None
    token: str


def _nullable(kind: str) -> dict:
    return {"type": [kind, "null"]}


_LIST = {"type": "array", "items": {"type": "object"}}

# Beside the projection's fields (shared/domain/incident_summary.py), what a list entry adds.
_SUMMARY_EXTRAS = {
    "status_since": {**_nullable("string"), "description": "when it entered its current status"},
    "mttr_target_minutes": _nullable("number"),
    "escalation_failed": {"type": "boolean"},
    "postmortem": {"type": ["object", "null"], "description": "status, due_at, owner and the action items still open"},
}
_ALERT_REF = {
    "type": "object",
    "required": ["fingerprint", "name", "summary", "status", "count", "first_seen", "last_seen", "source", "labels"],
    "properties": {
        "fingerprint": {"type": "string"}, "dedup_key": _nullable("string"), "name": {"type": "string"},
        "summary": {"type": "string"}, "status": {"type": "string", "enum": ["firing", "resolved"]},
        "count": {"type": "integer", "minimum": 1}, "first_seen": {"type": "string"}, "last_seen": {"type": "string"},
        "source": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
# Beside the projection's fields and the record, what the full incident adds.
_INCIDENT_EXTRAS = {
    "timeline": _LIST,
    "communication_log": _LIST,
    "evidence": _LIST,
    "alerts": {"type": "array", "items": {"$ref": _REF.format(model="AlertReference")},
               "description": "the most recently seen alert references (at most 500)"},
    "alerts_stored": {"type": "integer", "minimum": 0, "description": "alert references stored for the incident"},
    "alerts_truncated": {"type": "boolean",
                         "description": "true when the per-incident cap left references out (alert_count stays exact)"},
    "alerts_shown": {"type": "integer", "minimum": 0},
    "distinct_alerts": {"type": "integer", "minimum": 0},
    "postmortem": {"type": ["object", "null"]},
}


def incident_schemas(components: dict) -> dict[str, dict]:
    """IncidentSummary and Incident, derived from the one projection of the incident."""
    projection = IncidentSummary.model_json_schema(ref_template=_REF)
    components.update(projection.pop("$defs", {}))
    fields, required = projection["properties"], projection["required"]
    return {
        "IncidentSummary": {"type": "object", "required": [*required, *_SUMMARY_EXTRAS],
                            "properties": {**fields, **_SUMMARY_EXTRAS}},
        "AlertReference": _ALERT_REF,
        "Incident": {
            "type": "object",
            "description": "The record with its timeline, communication log, evidence, alerts and postmortem.",
            "required": [*required, "timeline", "communication_log", "evidence", "alerts", "alerts_stored",
                         "alerts_truncated"],
            "properties": {**fields, **_INCIDENT_EXTRAS},
        },
    }


SCHEMAS: dict[str, dict] = {
    "IncidentList": {
        "type": "object",
        "required": ["incidents", "count", "total", "offset"],
        "properties": {
            "incidents": {"type": "array", "items": {"$ref": _REF.format(model="IncidentSummary")}},
            "count": {"type": "integer", "minimum": 0, "description": "incidents on this page"},
            "total": {"type": "integer", "minimum": 0, "description": "incidents matching the filters"},
            "offset": {"type": "integer", "minimum": 0},
        },
    },
    "Me": {
        "type": "object",
        "required": ["name", "role", "permissions"],
        "properties": {
            "name": {"type": "string"},
            "role": {"type": "string"},
            "permissions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Postmortem": {
        "type": "object",
        "required": ["status", "action_items"],
        "properties": {"status": {"type": "string", "enum": ["draft", "completed"]}, "action_items": _LIST},
    },
    "ExportBundle": {
        "type": "object",
        "required": ["incident", "timeline", "audit_events", "audit_chain", "communication_log", "evidence", "alerts"],
        "properties": {
            "incident": {"type": "object"},
            "timeline": _LIST,
            "audit_events": {"type": "array", "items": {"$ref": _REF.format(model="ChainedAuditEvent")},
                             "description": "every audit event in version order, each with its hash and prev_hash"},
            "audit_chain": {"$ref": _REF.format(model="AuditChain")},
            "communication_log": _LIST,
            "evidence": _LIST,
            "alerts": {"type": "array", "items": {"$ref": _REF.format(model="AlertReference")}},
            "postmortem": {"type": ["object", "null"]},
        },
    },
    "ChainedAuditEvent": {
        "type": "object",
        "required": ["event_id", "incident_id", "version", "type", "change", "actor", "occurred_at", "summary", "data",
                     "prev_hash", "hash"],
        "properties": {
            "event_id": {"type": "string"}, "incident_id": {"type": "string"}, "version": {"type": "integer"},
            "type": {"type": "string"}, "change": {"type": "string"}, "actor": {"type": "string"},
            "occurred_at": {"type": "string"}, "summary": {"type": "string"}, "causation_id": _nullable("string"),
            "data": {"type": "object"}, "recorded_at": _nullable("string"),
            "prev_hash": {**_nullable("string"), "description": "the previous event's hash (64 zeros for the first)"},
            "hash": {**_nullable("string"), "description": "SHA-256 of this event's canonical form (README, "
                                                           "\"The audit chain\"); null before the chain existed"},
        },
    },
    "AuditChain": {
        "type": "object",
        "required": ["algorithm", "fields", "genesis", "head", "verified", "broken_at"],
        "properties": {
            "algorithm": {"const": "sha256"},
            "fields": {"type": "array", "items": {"type": "string"}, "description": "what the canonical form holds"},
            "genesis": {"type": "string", "description": "the first event's prev_hash"},
            "head": {**_nullable("string"), "description": "the chain head stored with the incident"},
            "verified": {"type": "boolean", "description": "whether the server found the chain intact"},
            "broken_at": {"type": ["object", "null"], "description": "the first broken link: incident_id, version, "
                                                                   "event_id, reason"},
        },
    },
    "TokenInfo": {
        "type": "object",
        "description": "A token or integration key as listed: never its secret or its hash.",
        "required": ["token_id", "name", "role", "created_at", "last_used_at", "expires_at", "revoked_at"],
        "properties": {
            "token_id": {"type": "string"}, "name": {"type": "string"}, "role": {"type": "string"},
            "created_at": {"type": "string"},
            "last_used_at": {**_nullable("string"), "description": "when the API last checked it (to within 30 s)"},
            "expires_at": {**_nullable("string"), "description": "from then on it answers 401 (null: never)"},
            "revoked_at": _nullable("string"),
        },
    },
    "TokenList": {
        "type": "object",
        "required": ["tokens", "count"],
        "properties": {"tokens": {"type": "array", "items": {"$ref": _REF.format(model="TokenInfo")}},
                       "count": {"type": "integer", "minimum": 0}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "kafka", "database"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "kafka": {"type": "boolean"},
            "database": {"type": "boolean", "description": "reported; intake does not need it"},
            "probe": {"type": "object", "description": "a probe sent with acks=all through this process's producer"},
        },
    },
}

# What the incident reads answer, by (method, path).
_OK_SCHEMA = {
    ("get", "/v1/incidents"): "IncidentList",
    ("get", "/v1/incidents/{incident_id}"): "Incident",
    ("get", "/v1/incidents/{incident_id}/postmortem"): "Postmortem",
    ("put", "/v1/incidents/{incident_id}/postmortem"): "Postmortem",
    ("post", "/v1/incidents/{incident_id}/postmortem/action-items"): "Postmortem",
    ("patch", "/v1/incidents/{incident_id}/postmortem/action-items/{item_id}"): "Postmortem",
    ("post", "/v1/incidents/{incident_id}/postmortem/complete"): "Postmortem",
    ("get", "/v1/incidents/{incident_id}/export"): "ExportBundle",
    ("post", "/v1/tokens"): "TokenCreated",
    ("get", "/v1/tokens"): "TokenList",
    ("delete", "/v1/tokens/{token_id}"): "TokenInfo",
    ("get", "/v1/me"): "Me",
    ("get", "/readyz"): "Readiness",
}


_COMMAND_PATH = re.compile(r"^/v1/incidents(/\{incident_id\}/[a-z-]+)?$")


def _command_answer(method: str, path: str) -> str | None:
    """Declaring and every lifecycle command answer with the incident's new state."""
    return "Incident" if method == "post" and _COMMAND_PATH.match(path) else None


def _model_schemas(components: dict, *models: type[BaseModel]) -> None:
    for model in models:
        schema = model.model_json_schema(ref_template=_REF, by_alias=True)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema


def _pagerduty_event(generated: dict) -> dict:
    """PagerDuty's rule as a schema: a trigger carries a payload, acknowledge and resolve a dedup key."""
    common = {k: v for k, v in generated["properties"].items() if k not in ("event_action", "dedup_key", "payload")}
    trigger = {
        "type": "object",
        "title": "Trigger",
        "required": ["routing_key", "event_action", "payload"],
        "properties": {
            **common,
            "event_action": {"const": "trigger"},
            "dedup_key": {"type": ["string", "null"], "maxLength": 255,
                          "description": "Absent, null or empty: one is generated and returned"},
            "payload": {"$ref": _REF.format(model="PagerDutyPayload")},
        },
    }
    follow_up = {
        "type": "object",
        "title": "AcknowledgeOrResolve",
        "required": ["routing_key", "event_action", "dedup_key"],
        "properties": {
            **common,
            "event_action": {"enum": ["acknowledge", "resolve"]},
            "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
            "payload": {"description": "Ignored: the dedup key alone names the alert"},
        },
    }
    return {"title": "PagerDutyEvent", "description": "A PagerDuty Events API v2 event", "oneOf": [trigger, follow_up]}


def _error(description: str, schema: str = "Error", headers: dict | None = None) -> dict:
    answer: dict = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before sending again", "schema": {"type": "integer"}}}
_BEARER = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
_GENIE = {"WWW-Authenticate": {"description": "GenieKey", "schema": {"type": "string"}}}


def _errors_for(method: str, path: str, operation: dict) -> dict[str, dict]:
    takes_input = "requestBody" in operation or bool(operation.get("parameters"))
    if path == "/v2/enqueue":
        return {
            "400": _error("Invalid event (the errors name the fields), or an unknown routing_key", "PagerDutyRefused"),
            "413": _error("The event is larger than 512 KB", "PagerDutyRefused"),
            "429": _error("The integration exceeded its rate limit, or this client failed authentication too often",
                          "PagerDutyRefused", _RETRY_AFTER),
            "503": _error("The broker did not acknowledge the event; retry", "PagerDutyRefused"),
        }
    if _OPSGENIE.match(path):
        refused = "OpsgenieRefused"
        errors = {
            "401": _error("Missing, unknown, revoked or expired integration key", refused, _GENIE),
            "403": _error("Not an integration key", refused),
            "404": _error("No such alert, request or heartbeat (or not processed yet)", refused),
            "429": _error("The integration exceeded its rate limit, or this client failed authentication too often "
                          "(then the body is the API's error shape)", refused, _RETRY_AFTER),
            "503": _error("The broker (or, for notes and request status, the database) is not reachable; retry",
                          refused),
        }
        if takes_input:
            errors["400"] = _error("Invalid request: `errors` names each field", refused)
        if method == "post":
            errors["413"] = _error("The request is larger than 512 KB", refused)
        return errors
    if _FEEDS.match(path):
        return {
            "400": _error("No feed token given (?token=)"),
            "401": _error("Unknown or revoked feed token"),
            "403": _error("The feed token is for another feed"),
            "404": _error("No such rotation or person in the organisation"),
        }
    errors: dict[str, dict] = {}
    if path == "/readyz":
        errors["503"] = _error("Not ready (the body says which dependency is down)", "Readiness")
    if path in _PUBLIC:
        return errors
    if takes_input:
        errors["400"] = _error("Invalid request: the error names the field")
    errors["401"] = _error("Missing, unknown, revoked or expired credentials (the error says which)", headers=_BEARER)
    errors["403"] = _error("The credential's role may not do this")
    if path != "/v1/integrations/alertmanager":  # Alertmanager drops a group answered 429: 503 there
        errors["429"] = _error("This client failed authentication too often: wait Retry-After seconds",
                               headers=_RETRY_AFTER)
    if path in _INTAKE:
        errors["413"] = _error("The request is too large")
        if path == "/v1/alerts":
            errors["429"] = _error("The integration exceeded its rate limit, or this client failed authentication "
                                   "too often", headers=_RETRY_AFTER)
            errors["503"] = _error("The broker did not acknowledge the alerts; retry", headers=_RETRY_AFTER)
        else:
            # Alertmanager retries a 5xx but drops the group on a 429.
            errors["503"] = _error("The integration exceeded its rate limit, this client failed authentication too "
                                   "often, or the broker did not acknowledge the alerts; retry after Retry-After",
                                   headers=_RETRY_AFTER)
    if path.startswith("/v1/heartbeats"):
        errors["404"] = _error("No heartbeat of that name in the configuration")
        errors["429"] = _error("The integration exceeded its rate limit, or this client failed authentication too "
                               "often", headers=_RETRY_AFTER)
        errors["503"] = _error("The broker did not acknowledge the ping; retry")
    if path == "/v1/tokens/{token_id}":
        errors["404"] = _error("No such token")
    if (method, path) == ("post", "/v1/tokens"):
        errors["409"] = _error("expires_at is already past")
    if path.startswith("/v1/feed-tokens"):
        if method == "post":
            errors["404"] = _error("No such rotation or person in the organisation")
        if method == "delete":
            errors["404"] = _error("No such feed token")
            errors["409"] = _error("Already revoked")
    elif path.startswith(_ONCALL) and method in ("post", "delete"):
        errors["503"] = _error("Stored on the broker but not recorded in time (read again shortly), or the broker "
                               "did not acknowledge it")
        if method == "delete":
            errors["404"] = _error("No such item")
            errors["409"] = _error("Already deleted or revoked")
        else:
            errors["404"] = _error("The body names a rotation, person or service the organisation does not have")
            errors["409"] = _error("The times conflict: the end is not after the start, or already past")
    if _INCIDENT_PATH.match(path):
        errors["404"] = _error("No such incident (or not visible to this role), or no postmortem yet")
    if method in ("post", "put", "patch") and path.startswith("/v1/incidents"):
        errors["409"] = _error("The lifecycle forbids this now; the error says why")
        errors["503"] = _error("Accepted but not applied in time (read the incident again shortly), or the "
                               "database is unavailable before the command was sent (Retry-After)",
                               headers=_RETRY_AFTER)
        errors["202"] = {"description": "The database is unavailable: the command is on the broker and will be "
                                        "applied; `command_id` names it. Read the incident once the database is back"}
    # Every authenticated path reads PostgreSQL (credentials are cached for intake).
    errors.setdefault("503", _error("The database is unavailable; retry after Retry-After", headers=_RETRY_AFTER))
    return errors


def _adjust(schema: dict) -> dict:
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    _model_schemas(models, NativeAlert, AlertmanagerPayload, PagerDutyEvent, PagerDutyAccepted, PagerDutyRefused,
                   Error, TokenCreated, OpsgenieAlert, OpsgenieAction, OpsgenieNote, OpsgenieAccepted,
                   OpsgenieRefused)
    models["PagerDutyEvent"] = _pagerduty_event(models["PagerDutyEvent"])
    models.update(SCHEMAS)
    models.update(incident_schemas(models))
    for unused in ("HTTPValidationError", "ValidationError"):
        models.pop(unused, None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "A user token (incidentctl token create) or, for alert intake, an integration key. "
                                  "The Opsgenie-compatible paths (/v2/alerts, /v2/heartbeats) also take Opsgenie's "
                                  "`Authorization: GenieKey <integration key>`."},
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if _FEEDS.match(path):
                operation["security"] = []
            elif path not in _PUBLIC:
                operation["security"] = [{"bearer": []}]
            responses.update(_errors_for(method, path, operation))
            model = _OK_SCHEMA.get((method, path)) or _command_answer(method, path)
            if model is not None:
                ok = next(code for code in responses if code.startswith("2"))
                content = responses[ok].setdefault("content", {})
                content["application/json"] = {"schema": {"$ref": _REF.format(model=model)}}
    return schema


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the adjusted document (built once, then cached)."""
    generate: Callable[[], dict] = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _adjust(generate())
        return app.openapi_schema

    app.openapi = openapi
