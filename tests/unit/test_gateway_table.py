"""The route table is the gateway's only declaration of its public surface: routing, 405 and
OPTIONS answers, the OpenAPI file and the Workers' own routers all agree with it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.app import build_app
from gateway.routes import ROUTES
from kernel.runtime.errors import MethodNotAllowed
from kernel.runtime.router import Router

ROOT = Path(__file__).resolve().parents[2]


def test_each_method_and_pattern_is_one_row() -> None:
    keys = [(r.method, r.pattern) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_the_router_is_the_table() -> None:
    app = build_app(SimpleNamespace())
    assert [(r.method, r.pattern) for r in app.router.routes] == [
        (r.method, r.pattern) for r in ROUTES
    ]


def test_openapi_paths_are_the_table() -> None:
    doc = json.loads((ROOT / "schema" / "openapi.json").read_text())
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.pattern) for r in ROUTES}
    for row in ROUTES:
        op = doc["paths"][row.pattern][row.method.lower()]
        assert op["summary"] == row.summary
        assert ("security" in op) == (row.auth != "none"), row.pattern
        assert str(row.status) in op["responses"]


def test_405_allow_lists_the_rows_of_the_path_and_head_with_get() -> None:
    router = build_app(SimpleNamespace()).router
    with pytest.raises(MethodNotAllowed) as refused:
        router.resolve("POST", "/v1/documents/d_1")
    assert refused.value.headers["allow"] == "DELETE, GET, HEAD, PATCH, PUT"
    with pytest.raises(MethodNotAllowed) as refused:
        router.resolve("GET", "/v1/search")
    assert refused.value.headers["allow"] == "POST"
    route, _ = router.resolve("OPTIONS", "/v1/search")
    assert route.method == "OPTIONS" and route.pattern == "/v1/search"
    route, _ = router.resolve("HEAD", "/health")
    assert route.method == "GET"  # HEAD runs the GET row; the app drops the body


def _worker_router(name: str) -> Router:
    module = __import__(f"{name}.app", fromlist=["build_app"])
    router: Router = module.build_app(SimpleNamespace()).router
    return router


@pytest.mark.parametrize("row", [r for r in ROUTES if r.forwards_to], ids=lambda r: r.pattern)
def test_every_forwarded_row_lands_on_a_route_of_its_worker(row: object) -> None:
    """The gateway forwards `/v1/<path>` to `<path>`: the Worker behind must route exactly that
    method and pattern, so a row can't point at nothing."""
    from gateway.route import Route

    assert isinstance(row, Route) and row.forwards_to
    worker = {"RAG": "rag", "INGEST": "ingest"}[row.forwards_to]
    routes = {(r.method, r.pattern) for r in _worker_router(worker).routes}
    assert (row.method, row.pattern.removeprefix("/v1")) in routes


def test_local_rows_are_async_handlers_of_gateway_modules() -> None:
    import inspect

    for row in ROUTES:
        if row.forwards_to is None:
            assert inspect.iscoroutinefunction(row.to), row.pattern
            assert row.to.__module__ in (
                "gateway.identity",
                "gateway.operator",
                "gateway.console",
                "gateway.mcp",
            ), row.pattern


def test_rows_that_count_or_spend_need_a_principal_or_count_themselves() -> None:
    for row in ROUTES:
        if row.spends_tokens:
            assert row.auth == "principal" and row.forwards_to == "RAG", row.pattern
        if row.roles is not None:
            assert row.auth in ("principal", "operator_or_principal"), row.pattern
            assert row.what, f"{row.pattern}: a role-gated row names its action for the 403"


def test_no_gateway_module_outgrows_one_purpose() -> None:
    sizes = {
        p.name: len(p.read_text().splitlines()) for p in (ROOT / "workers" / "gateway").glob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 320} == {}
