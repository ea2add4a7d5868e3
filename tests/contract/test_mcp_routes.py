"""The rag Worker's MCP routes (`POST`/`DELETE /mcp`) against both contracts they keep: our own
models (kernel.contracts.mcp, held exactly) and the official SDK's wire types (mcp_types, what a
client parses), with the session header the gateway relays and the usage header it budgets from.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import mcp_types
import pytest

from emulator.mesh import Mesh
from kernel.contracts import mcp, rag
from tests.contract.internal_routes import WorkerClient, assert_is
from tests.e2e.conftest import new_tenant

TEXT = "Chlorophyll absorbs red and blue light and reflects green light."
QUESTION = "Which light does chlorophyll absorb?"


@pytest.fixture
async def worker(mesh: Mesh, client: httpx.AsyncClient) -> SimpleNamespace:
    tenant_id, _ = await new_tenant(client, "mcp-contract")
    teacher = ("u_teacher", "teacher")
    ingest = WorkerClient(mesh.stores["INGEST"], tenant_id, teacher)
    status, body, _ = await ingest.call("POST", "/documents", {"title": "Light", "text": TEXT})
    assert status == 202, body
    await mesh.drain()
    rag_worker = WorkerClient(mesh.stores["RAG"], tenant_id, teacher)
    status, opened, headers = await rag_worker.call(
        "POST",
        "/mcp",
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}},
        },
    )
    assert status == 200, opened
    return SimpleNamespace(
        rag=rag_worker,
        document_id=body["document_id"],
        opened=opened,
        session={mcp.SESSION_HEADER: headers[mcp.SESSION_HEADER]},
    )


async def rpc(
    w: SimpleNamespace, method: str, params: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    status, body, headers = await w.rag.call("POST", "/mcp", message, w.session)
    assert status == 200 and body["id"] == 1 and set(body) == {"jsonrpc", "id", "result"}, body
    return dict(body["result"]), headers


def both(ours: type[Any], theirs: type[Any], result: dict[str, Any]) -> Any:
    """Exactly our model, and parsed by the SDK as the type it expects for that method."""
    theirs.model_validate(result)
    return assert_is(ours, {k: v for k, v in result.items() if k != "_meta"})


async def test_initialize_names_the_session_and_the_version(worker: SimpleNamespace) -> None:
    result = worker.opened["result"]
    both(mcp.InitializeResult, mcp_types.InitializeResult, result)
    assert result["protocolVersion"] == mcp.LATEST
    assert set(result["capabilities"]) == {"tools", "resources"}
    assert worker.session[mcp.SESSION_HEADER].startswith("mcs_")


async def test_tools_list_and_call_with_usage(worker: SimpleNamespace) -> None:
    listed, _ = await rpc(worker, "tools/list", {})
    tools = both(mcp.ListToolsResult, mcp_types.ListToolsResult, listed)
    assert {t.name for t in tools.tools} == set(mcp.MCP_TOOLS)  # a teacher may use them all
    for tool in listed["tools"]:
        assert_is(mcp.Tool, tool)
    found, headers = await rpc(
        worker, "tools/call", {"name": "search", "arguments": {"query": QUESTION}}
    )
    result = both(mcp.CallToolResult, mcp_types.CallToolResult, found)
    assert not result.isError and headers[rag.USAGE_HEADER] == "0"
    assert found["_meta"]["edgerag/audit_id"].startswith("aud_")
    answered, headers = await rpc(
        worker, "tools/call", {"name": "answer", "arguments": {"query": QUESTION}}
    )
    both(mcp.CallToolResult, mcp_types.CallToolResult, answered)
    reply = assert_is(rag.AnswerResponse, answered["structuredContent"])
    assert headers[rag.USAGE_HEADER] == str(reply.usage["total_tokens"]) != "0"


async def test_resources_list_templates_and_read(worker: SimpleNamespace) -> None:
    listed, _ = await rpc(worker, "resources/list", {})
    resources = both(mcp.ListResourcesResult, mcp_types.ListResourcesResult, listed)
    uri = mcp.DOCUMENT_URI.format(document_id=worker.document_id)
    assert [r.uri for r in resources.resources] == [uri]
    templates, _ = await rpc(worker, "resources/templates/list", {})
    both(mcp.ListResourceTemplatesResult, mcp_types.ListResourceTemplatesResult, templates)
    read, _ = await rpc(worker, "resources/read", {"uri": uri})
    contents = both(mcp.ReadResourceResult, mcp_types.ReadResourceResult, read).contents
    assert contents[0].text == TEXT and contents[0].meta["edgerag/version"] == 1


async def test_delete_ends_the_session(worker: SimpleNamespace) -> None:
    status, body, _ = await worker.rag.call("DELETE", "/mcp", None, worker.session)
    assert status == 204 and body is None
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    status, body, _ = await worker.rag.call("POST", "/mcp", ping, worker.session)
    error = assert_is(mcp.ErrorResponse, body)
    assert status == 404 and error.id is None and error.error.code == mcp.INVALID_REQUEST
