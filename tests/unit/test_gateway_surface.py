"""The gateway's public surface: every route is in the OpenAPI file, and the scraper's view of
/metrics has no per-tenant series."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from gateway.app import build_app
from kernel.runtime.metrics import Registry, without_label

SCHEMA = Path(__file__).resolve().parents[2] / "schema" / "openapi.json"


def test_every_gateway_route_is_in_the_openapi_file() -> None:
    app = build_app(SimpleNamespace())
    routes = {(r.method.lower(), r.pattern) for r in app.router.routes}
    doc = json.loads(SCHEMA.read_text())
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented


def test_metrics_operator_only_routes_are_marked_as_such() -> None:
    doc = json.loads(SCHEMA.read_text())
    assert doc["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]
    assert "user_id" in {
        p["name"] for p in doc["paths"]["/v1/users/{user_id}"]["patch"]["parameters"]
    }


def test_without_label_sums_the_label_away_and_keeps_the_rest_exact() -> None:
    registry = Registry()
    for tenant, direction, n in (("t_a", "in", 3), ("t_b", "in", 4), ("t_b", "out", 1.5)):
        registry.inc(
            "edgerag_llm_tokens_total", n, help="tokens", tenant=tenant, direction=direction
        )
    registry.inc("edgerag_requests_total", 2, help="requests", route='/v1/x"y', status="200")
    registry.observe("edgerag_request_duration_ms", 7, help="latency", route="/health")
    text = registry.render({"worker": "llm"})
    redacted = without_label(text, "tenant")
    assert "t_a" not in redacted and "t_b" not in redacted and "tenant=" not in redacted
    assert 'edgerag_llm_tokens_total{direction="in",worker="llm"} 7\n' in redacted
    assert 'edgerag_llm_tokens_total{direction="out",worker="llm"} 1.5\n' in redacted
    # Lines without the label are untouched, byte for byte, in their order.
    untouched = [line for line in text.splitlines() if "tenant=" not in line]
    assert [line for line in redacted.splitlines() if "llm_tokens_total{" not in line] == untouched
    assert without_label("", "tenant") == ""
