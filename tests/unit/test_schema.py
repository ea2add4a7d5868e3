from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("schema_generate", SCHEMA_DIR / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_matches_the_models() -> None:
    committed = (SCHEMA_DIR / "openapi.json").read_text()
    assert committed == _generator().render(), "schema/openapi.json is stale: run `make schema`"


def test_openapi_describes_the_error_shape_and_routes() -> None:
    doc = json.loads((SCHEMA_DIR / "openapi.json").read_text())
    assert set(doc["components"]["schemas"]["Error"]["properties"]["error"]["required"]) == {
        "code",
        "message",
        "request_id",
    }
    assert {"/v1/tenants", "/v1/documents", "/v1/search", "/health", "/metrics"} <= set(
        doc["paths"]
    )
    search = doc["components"]["schemas"]["SearchRequest"]
    assert (
        search["properties"]["top_k"]["maximum"] == 100 and search["additionalProperties"] is False
    )


def test_document_uploads_declare_multipart_as_well_as_json() -> None:
    doc = json.loads((SCHEMA_DIR / "openapi.json").read_text())
    schemas = doc["components"]["schemas"]
    for method, path in (("post", "/v1/documents"), ("put", "/v1/documents/{document_id}")):
        content = doc["paths"][path][method]["requestBody"]["content"]
        assert set(content) == {"application/json", "multipart/form-data"}, (method, content)
        form = content["multipart/form-data"]
        schema = schemas[form["schema"]["$ref"].rsplit("/", 1)[-1]]
        assert schema["required"] == ["file"]
        assert set(schema["properties"]) == {"file", "title", "visibility", "tags", "metadata"}
        assert schema["properties"]["file"] == {"type": "string", "format": "binary"}
        # tags and metadata travel as JSON text in their form fields
        assert form["encoding"]["tags"]["contentType"] == "application/json"
        assert form["encoding"]["metadata"]["contentType"] == "application/json"
