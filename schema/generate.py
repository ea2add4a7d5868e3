"""Generate schema/openapi.json from the gateway's route table (gateway/routes.py) and the
public pydantic models its rows name (kernel.contracts.api, gateway.models).

`make schema` rewrites it; a test fails when the committed file is stale, so the published
contract can never drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from gateway.routes import ROUTES
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


# Upload routes (`multipart=True` rows) also take a file plus the DocumentOptions fields, tags
# and metadata as JSON text in their form fields (ingest/uploads.py reads exactly these).
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
    requests = {r.request_model for r in ROUTES if r.request_model is not None}
    models = [m for r in ROUTES for m in (r.request_model, r.response_model) if m is not None]
    unique = list(dict.fromkeys(models))
    _, defs = models_json_schema(
        [(m, "validation" if m in requests else "serialization") for m in unique],
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
    for route in ROUTES:
        op: dict[str, Any] = {"summary": route.summary, "responses": {}}
        if route.auth != "none":
            operator = route.auth in ("operator", "metrics")
            op["security"] = [{"bearer": []}]
            op["description"] = (
                f"Authorization: Bearer <{'operator token' if operator else 'API key'}>"
            )
        op["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.params
        ]
        if route.paged:
            op["parameters"] += page_parameters()
        if route.request_model is not None:
            ref = {"$ref": f"#/components/schemas/{route.request_model.__name__}"}
            content: dict[str, Any] = {"application/json": {"schema": ref}}
            if route.multipart:
                content["multipart/form-data"] = {
                    "schema": {"$ref": "#/components/schemas/MultipartDocument"},
                    "encoding": MULTIPART_ENCODING,
                }
            op["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "success"}
        if route.response_model is not None:
            schema = {"$ref": f"#/components/schemas/{route.response_model.__name__}"}
            ok["content"] = {"application/json": {"schema": schema}}
        op["responses"][str(route.status)] = ok
        op["responses"]["default"] = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        paths.setdefault(route.pattern, {})[route.method.lower()] = op
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
