"""The MCP server's pieces without a mesh: how the gateway prices a message, how a message is
parsed, and that every tool an MCP client sees is declared in a shape clients accept."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # via mcp

from gateway.mcp import message_cost
from gateway.route import Cost
from gateway.routes import ROUTES
from kernel.contracts.mcp import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MCP_TOOLS,
    PARSE_ERROR,
    CallToolParams,
)
from rag.mcp import jsonrpc, tools
from rag.mcp.jsonrpc import RpcError


def body(message: Any) -> bytes:
    return json.dumps(message).encode()


def call(name: Any) -> bytes:
    return body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}})


@pytest.mark.parametrize(
    ("message", "cost"),
    [
        (call("search"), Cost("search", False)),
        (call("answer"), Cost("answer", True)),
        (call("summarize"), Cost("answer", True)),  # calls a model: held to the budget
        (call("ingest_document"), Cost("ingest", False)),
        (call("get_document"), Cost("api", False)),
        (call("no_such_tool"), Cost("api", False)),
        (call(["search"]), Cost("api", False)),
        (body({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), Cost("api", False)),
        (body([{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}]), Cost("api", False)),
        (
            b'{"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "answer"',
            Cost("api", False),
        ),
        (b"", Cost("api", False)),
    ],
)
def test_a_tools_call_is_priced_as_its_tool(message: bytes, cost: Cost) -> None:
    assert message_cost(message) == cost


def test_the_mcp_rows_price_by_body_and_land_on_the_rag_worker() -> None:
    from rag.app import build_app

    rows = {r.method: r for r in ROUTES if r.pattern == "/mcp"}
    assert set(rows) == {"POST", "DELETE"}
    assert rows["POST"].cost({}, call("answer")) == Cost("answer", True)
    assert rows["DELETE"].cost({}, b"") == Cost("api", False)
    rag = {(r.method, r.pattern) for r in build_app(SimpleNamespace()).router.routes}
    assert {("POST", "/mcp"), ("DELETE", "/mcp")} <= rag


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "ping"}, "request"),
        ({"jsonrpc": "2.0", "id": "a", "method": "tools/list", "params": {}}, "request"),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, "notification"),
        ({"jsonrpc": "2.0", "id": 4, "result": {}}, "response"),
        ({"jsonrpc": "2.0", "id": 4, "error": {"code": 1, "message": "no"}}, "response"),
    ],
)
def test_messages_parse_by_kind(raw: dict[str, Any], kind: str) -> None:
    assert jsonrpc.parse(body(raw)).kind == kind


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{", PARSE_ERROR),
        (b"NaN", PARSE_ERROR),
        (b"[" * 40 + b"]" * 40, PARSE_ERROR),
        (body([]), INVALID_REQUEST),
        (body("ping"), INVALID_REQUEST),
        (body({"id": 1, "method": "ping"}), INVALID_REQUEST),  # no "jsonrpc": "2.0"
        (body({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}), INVALID_REQUEST),
        (body({"jsonrpc": "2.0", "id": "", "method": "ping"}), INVALID_REQUEST),
        (body({"jsonrpc": "2.0", "id": 1, "method": ""}), INVALID_REQUEST),
        (body({"jsonrpc": "2.0", "id": 1}), INVALID_REQUEST),
    ],
)
def test_what_is_not_one_message_is_a_400(raw: bytes, code: int) -> None:
    with pytest.raises(RpcError) as refused:
        jsonrpc.parse(raw)
    assert refused.value.code == code and refused.value.status == 400


@pytest.mark.parametrize(
    "params",
    [[1], {"arguments": {}}, {"name": 5}, {"name": "x" * 129}, {"name": "s", "arguments": [1]}],
)
def test_params_that_break_the_method_are_invalid_params(params: Any) -> None:
    message = jsonrpc.parse(
        body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
    )
    with pytest.raises(RpcError) as refused:
        jsonrpc.params(CallToolParams, message)
    assert refused.value.code == INVALID_PARAMS and refused.value.status == 200


def test_every_mcp_tool_is_declared_as_clients_expect_and_runs_somewhere() -> None:
    async def answered(*_: Any) -> tuple[dict[str, Any], int]:
        raise AssertionError("not called")

    runnable = tools.impls(answered)
    for name, spec in MCP_TOOLS.items():
        assert name == spec.name and name in runnable
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name)  # the spec's tool-name rule
        declared = tools.declaration(spec)
        for schema in (declared.inputSchema, declared.outputSchema):
            assert schema is not None and schema["type"] == "object"
            Draft202012Validator.check_schema(schema)
        assert declared.inputSchema.get("additionalProperties") is False  # strict arguments
    hints = {n: tools.declaration(s).annotations for n, s in MCP_TOOLS.items()}
    assert {n for n, a in hints.items() if a is not None and a.readOnlyHint is False} == {
        "ingest_document",
        "tag_document",
    }
    assert "search_knowledge_base" not in MCP_TOOLS  # listed once, as `search`
