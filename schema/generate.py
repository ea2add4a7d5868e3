"""Generate schema/openapi.json from the public pydantic models (kernel.contracts.api).

`make schema` rewrites it; a test fails when the committed file is stale, so the published
contract can never drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import models as gateway_models
from kernel.contracts import api

OUT = Path(__file__).with_name("openapi.json")

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}

# (method, path, request model, success status, response model, summary, auth)
ROUTES: list[tuple[str, str, type[BaseModel] | None, int, type[BaseModel] | None, str, str]] = [
    (
        "post",
        "/v1/tenants",
        api.CreateTenant,
        201,
        api.TenantCreated,
        "Create a tenant and its first admin API key",
        "operator",
    ),
    (
        "patch",
        "/v1/tenants/{tenant_id}",
        gateway_models.TenantPolicy,
        200,
        None,
        "CORS origins (tenant admin or operator) and daily LLM token budget (operator)",
        "api_key",
    ),
    (
        "post",
        "/v1/auth/register",
        gateway_models.RegisterUser,
        201,
        None,
        "Register a user (tenant admins)",
        "api_key",
    ),
    (
        "post",
        "/v1/auth/login",
        gateway_models.Login,
        200,
        None,
        "→ {access_token, refresh_token, token_type, expires_in}; rate limited per IP and email",
        "none",
    ),
    (
        "post",
        "/v1/auth/refresh",
        gateway_models.Refresh,
        200,
        None,
        "Rotate a refresh token; reusing a spent one revokes its whole family",
        "none",
    ),
    ("get", "/v1/auth/me", None, 200, None, "The caller: id, tenant_id, role, kind", "api_key"),
    (
        "post",
        "/v1/auth/logout",
        None,
        200,
        None,
        "End the caller's session: its refresh tokens and access tokens stop working at once"
        " (users; API keys are revoked instead)",
        "api_key",
    ),
    ("get", "/v1/users", None, 200, None, "Users (admins: all; teachers: students)", "api_key"),
    (
        "patch",
        "/v1/users/{user_id}",
        gateway_models.UpdateUser,
        200,
        None,
        "Change a user's role or disable/enable them (admins, not on themselves); effective on"
        " the user's next request, and disabling ends every session",
        "api_key",
    ),
    ("get", "/v1/api-keys", None, 200, None, "API keys (admins; never the key itself)", "api_key"),
    (
        "post",
        "/v1/api-keys",
        gateway_models.CreateApiKey,
        201,
        None,
        "New API key, shown once (admins)",
        "api_key",
    ),
    ("delete", "/v1/api-keys/{key_id}", None, 200, None, "Revoke an API key (admins)", "api_key"),
    ("get", "/v1/relationships", None, 200, None, "Teacher–student relationships", "api_key"),
    (
        "post",
        "/v1/relationships",
        gateway_models.CreateRelationship,
        201,
        None,
        "A teacher adds a student ({student_id}); admins also name the teacher",
        "api_key",
    ),
    (
        "delete",
        "/v1/relationships/{relationship_id}",
        None,
        200,
        None,
        "Remove a relationship",
        "api_key",
    ),
    (
        "get",
        "/v1/rate-limit/status",
        None,
        200,
        None,
        "The caller's rate-limit windows and token budget",
        "api_key",
    ),
    (
        "post",
        "/v1/documents",
        api.JsonDocument,
        202,
        api.DocumentAccepted,
        "Add a document: JSON text or url, or multipart/form-data"
        " (file, title, visibility, tags, metadata); optional Idempotency-Key header",
        "api_key",
    ),
    ("get", "/v1/documents", None, 200, None, "List documents (?limit, ?cursor pages)", "api_key"),
    (
        "get",
        "/v1/documents/{document_id}",
        None,
        200,
        None,
        "One document with its versions",
        "api_key",
    ),
    (
        "put",
        "/v1/documents/{document_id}",
        api.JsonDocument,
        202,
        api.DocumentAccepted,
        "New version: JSON text or url, or multipart/form-data (file, title); the document keeps"
        " its visibility, tags and metadata. 200 with unchanged=true when the content is identical",
        "api_key",
    ),
    (
        "delete",
        "/v1/documents/{document_id}",
        None,
        200,
        None,
        "Soft delete; ?purge=true removes vectors, index rows and originals",
        "api_key",
    ),
    (
        "post",
        "/v1/documents/{document_id}/restore",
        None,
        200,
        None,
        "Undo a soft delete",
        "api_key",
    ),
    (
        "get",
        "/v1/documents/{document_id}/status",
        None,
        200,
        None,
        "queued | processing | ready | failed, with progress and failure reason",
        "api_key",
    ),
    ("get", "/v1/settings", None, 200, api.TenantSettings, "Tenant ingestion settings", "api_key"),
    (
        "patch",
        "/v1/settings",
        api.TenantSettings,
        200,
        api.TenantSettings,
        "Change tenant settings (admin)",
        "api_key",
    ),
    (
        "post",
        "/v1/search",
        api.SearchRequest,
        200,
        api.SearchResponse,
        "Hybrid search (dense + BM25, RRF or weighted fusion, reranked); filters and per-stage timings",
        "api_key",
    ),
    (
        "post",
        "/v1/answer",
        api.AnswerRequest,
        200,
        api.AnswerResponse,
        "Grounded answer with verified citations, confidence, follow-ups; abstains when unsupported",
        "api_key",
    ),
    ("post", "/v1/chat/sessions", api.CreateSession, 201, None, "Start a chat session", "api_key"),
    ("get", "/v1/chat/sessions", None, 200, None, "The caller's chat sessions", "api_key"),
    (
        "get",
        "/v1/chat/sessions/{session_id}",
        None,
        200,
        None,
        "A session with its messages",
        "api_key",
    ),
    ("delete", "/v1/chat/sessions/{session_id}", None, 200, None, "Delete a session", "api_key"),
    (
        "post",
        "/v1/chat/sessions/{session_id}/messages",
        api.ChatMessageRequest,
        200,
        api.AnswerResponse,
        "Ask in a session; with stream=true the answer is text/event-stream: token, citation, done, error",
        "api_key",
    ),
    (
        "post",
        "/v1/eval",
        None,
        200,
        None,
        "Score retrieval on the tenant's golden set ({questions: [{question, relevant_document_ids,"
        " grades?}], modes?, per_question?}): nDCG@10, Recall@10/100, MRR@10, P@3 per mode",
        "api_key",
    ),
    ("get", "/health", None, 200, None, "Workers, bindings, models and stand-ins", "none"),
    (
        "get",
        "/metrics",
        None,
        200,
        None,
        "Prometheus metrics: the operator token sees everything; EDGERAG_METRICS_TOKEN the same"
        " without per-tenant series",
        "operator",
    ),
]


# List routes with keyset pages (kernel/domain/paging.py); the other lists take no query parameters.
PAGINATED = {("get", "/v1/documents")}


def page_parameters() -> list[dict[str, Any]]:
    from kernel.domain.paging import CURSOR_NAMES, DEFAULT_LIMIT, MAX_LIMIT

    return [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
        {
            "name": CURSOR_NAMES[0],
            "in": "query",
            "required": False,
            "description": f"the previous page's next_cursor (also accepted as `{CURSOR_NAMES[1]}`)",
            "schema": {"type": "string"},
        },
    ]


# Routes that also take multipart/form-data: a file plus the DocumentOptions fields, tags and
# metadata as JSON text in their form fields (ingest/uploads.py reads exactly these).
MULTIPART = {("post", "/v1/documents"), ("put", "/v1/documents/{document_id}")}
REF = "#/components/schemas/{model}"


def multipart_document() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the MultipartDocument schema, the $defs it needs)."""
    options = api.DocumentOptions.model_json_schema(ref_template=REF)
    schema = {
        "title": "MultipartDocument",
        "description": "A file part (its filename and Content-Type are used to detect PDF, DOCX,"
        " HTML, Markdown or text) and the document options as form fields.",
        "type": "object",
        "required": ["file"],
        "additionalProperties": False,
        "properties": {"file": {"type": "string", "format": "binary"}, **options["properties"]},
    }
    return schema, options.get("$defs", {})


MULTIPART_ENCODING = {
    "tags": {"contentType": "application/json"},
    "metadata": {"contentType": "application/json"},
}


def build() -> dict[str, Any]:
    models = [m for _, _, req, _, resp, _, _ in ROUTES for m in (req, resp) if m is not None]
    unique = list(dict.fromkeys(models))
    _, defs = models_json_schema(
        [(m, "validation" if m in {r[2] for r in ROUTES} else "serialization") for m in unique],
        ref_template=REF,
    )
    multipart, multipart_defs = multipart_document()
    schemas = {
        **defs.get("$defs", {}),
        **multipart_defs,
        "MultipartDocument": multipart,
        "Error": ERROR,
    }
    paths: dict[str, Any] = {}
    for method, path, req, status, resp, summary, auth in ROUTES:
        op: dict[str, Any] = {"summary": summary, "responses": {}}
        if auth != "none":
            op["security"] = [{"bearer": []}]
            op["description"] = (
                f"Authorization: Bearer <{'operator token' if auth == 'operator' else 'API key'}>"
            )
        op["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in (
                "document_id",
                "session_id",
                "tenant_id",
                "key_id",
                "relationship_id",
                "user_id",
            )
            if "{" + name + "}" in path
        ]
        if (method, path) in PAGINATED:
            op["parameters"] += page_parameters()
        if req is not None:
            ref = {"$ref": f"#/components/schemas/{req.__name__}"}
            content: dict[str, Any] = {"application/json": {"schema": ref}}
            if (method, path) in MULTIPART:
                content["multipart/form-data"] = {
                    "schema": {"$ref": "#/components/schemas/MultipartDocument"},
                    "encoding": MULTIPART_ENCODING,
                }
            op["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "success"}
        if resp is not None:
            ok["content"] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{resp.__name__}"}}
            }
        op["responses"][str(status)] = ok
        op["responses"]["default"] = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "edgerag", "version": "1"},
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
