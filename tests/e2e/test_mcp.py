"""The MCP server at /mcp, driven by the official `mcp` Python SDK client over a real loopback
socket (Streamable HTTP), and by plain HTTP where a client would never go: no token, broken
JSON-RPC, unknown methods and params, versions and sessions that are not ours.

One school with a teacher's public lesson and private notes holding a canary, a student, and a
second tenant: what each may list, call and read is what they may through /v1, and nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import httpx2
import mcp_types
import pytest
from mcp import ClientSession
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from emulator.mesh import Mesh
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, client_for, ingest, new_tenant
from tests.e2e.devserver import serving

LESSON = (
    "Chlorophyll absorbs red and blue light and reflects green light. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen."
)
CANARY = "canary-mcp-4417"
NOTES = f"Marking notes: the {CANARY} answer key says stomata close at night."
QUESTION = "Which light does chlorophyll absorb?"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


async def api_key(client: httpx.AsyncClient, admin: dict[str, str], role: str) -> dict[str, str]:
    made = await client.post("/v1/api-keys", json={"name": role, "role": role}, headers=admin)
    assert made.status_code == 201, made.text
    return {"authorization": f"Bearer {made.json()['api_key']}"}


@pytest.fixture
async def school(mesh: Mesh) -> AsyncIterator[SimpleNamespace]:
    async with client_for(mesh) as client:
        tenant, admin = await new_tenant(client, "mcp school")
        teacher = await api_key(client, admin, "teacher")
        student = await api_key(client, admin, "student")
        lesson = await ingest(client, teacher, "Light", LESSON)
        notes = await ingest(client, teacher, "Marking notes", NOTES, visibility="private")
        _, other_admin = await new_tenant(client, "another school")
        async with serving(mesh) as url:
            yield SimpleNamespace(
                client=client,
                mcp=f"{url}/mcp",
                tenant=tenant,
                admin=admin,
                teacher=teacher,
                student=student,
                other_admin=other_admin,
                lesson=lesson["document_id"],
                notes=notes["document_id"],
            )


@asynccontextmanager
async def session(url: str, auth: dict[str, str]) -> AsyncIterator[ClientSession]:
    """The SDK's own client, as an MCP host would configure it: URL plus bearer header."""
    async with (
        httpx2.AsyncClient(headers=auth, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        yield mcp


def uri(document_id: str) -> str:
    return f"edgerag://documents/{document_id}"


def texts(result: mcp_types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mcp_types.TextContent))


# --- the SDK client -----------------------------------------------------------------------------
async def test_initialize_lists_tools_and_answers_with_citations(school: SimpleNamespace) -> None:
    async with session(school.mcp, school.teacher) as mcp:
        init = await mcp.initialize()
        assert init.protocol_version == "2025-11-25" and init.server_info.name == "edgerag"
        assert init.capabilities.tools is not None and init.capabilities.resources is not None
        assert await mcp.send_ping() is not None
        listed = {t.name: t for t in (await mcp.list_tools()).tools}
        assert {"search", "answer", "get_document", "ingest_document"} <= set(listed)
        assert "search_knowledge_base" not in listed  # listed once, as `search`
        assert listed["search"].input_schema["required"] == ["query"]
        assert listed["answer"].output_schema is not None
        assert listed["ingest_document"].annotations is not None
        assert listed["ingest_document"].annotations.read_only_hint is False

        # The SDK checks each structuredContent against the tool's outputSchema itself.
        found = await mcp.call_tool("search", {"query": QUESTION, "top_k": 3})
        assert not found.is_error and found.structured_content is not None
        passages = found.structured_content["passages"]
        assert passages[0]["document_id"] == school.lesson and "Chlorophyll" in passages[0]["text"]
        links = [c for c in found.content if isinstance(c, mcp_types.ResourceLink)]
        assert links[0].uri == uri(school.lesson) and links[0].title == "Light"
        assert (
            len({link.uri for link in links})
            == len(links)
            == len({p["document_id"] for p in passages})
        )
        assert "Chlorophyll" in texts(found)  # the same result as JSON text, for older clients

        answered = await mcp.call_tool("answer", {"query": QUESTION})
        assert not answered.is_error and answered.structured_content is not None
        reply = answered.structured_content
        assert not reply["abstained"] and "red and blue" in reply["answer"]
        citation = reply["citations"][0]
        assert citation["document_id"] == school.lesson and citation["quote"] in LESSON
        assert reply["usage"]["total_tokens"] > 0

        document = await mcp.call_tool("get_document", {"document_id": school.lesson})
        assert document.structured_content is not None
        assert document.structured_content["document"]["title"] == "Light"


async def test_documents_are_resources_read_as_text(school: SimpleNamespace) -> None:
    async with session(school.mcp, school.teacher) as mcp:
        await mcp.initialize()
        listed = await mcp.list_resources()
        by_uri = {r.uri: r for r in listed.resources}
        assert set(by_uri) == {uri(school.lesson), uri(school.notes)}  # the teacher's own two
        assert by_uri[uri(school.lesson)].name == "Light"
        read = await mcp.read_resource(uri(school.lesson))
        content = read.contents[0]
        assert isinstance(content, mcp_types.TextResourceContents)
        assert content.text == LESSON and content.mime_type == "text/plain"
        assert content.meta is not None and content.meta["edgerag/truncated"] is False
        templates = await mcp.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == [
            "edgerag://documents/{document_id}",
            "edgerag://documents/{document_id}/pages/{page}",
        ]
        with pytest.raises(MCPError) as missing:
            await mcp.read_resource("edgerag://documents/d_doesnotexist")
        assert missing.value.error.code == -32002
        with pytest.raises(MCPError) as foreign:
            await mcp.read_resource("file:///etc/passwd")
        assert foreign.value.error.code == -32602


async def test_a_student_has_no_write_tools_and_the_private_canary_stays_hidden(
    school: SimpleNamespace,
) -> None:
    async with session(school.mcp, school.student) as mcp:
        await mcp.initialize()
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert "ingest_document" not in names and {"search", "answer"} <= names
        refused = await mcp.call_tool("ingest_document", {"title": "x", "text": "y"})
        assert refused.is_error and "tool_forbidden" in texts(refused)
        found = await mcp.call_tool("search", {"query": f"{CANARY} stomata marking notes"})
        assert found.structured_content is not None
        assert CANARY not in str(found.structured_content)
        assert {p["document_id"] for p in found.structured_content["passages"]} <= {school.lesson}
        resources = {r.uri for r in (await mcp.list_resources()).resources}
        assert resources == {uri(school.lesson)}
        with pytest.raises(MCPError) as hidden:
            await mcp.read_resource(uri(school.notes))
        assert hidden.value.error.code == -32002 and CANARY not in str(hidden.value)
        answered = await mcp.call_tool("answer", {"query": "When do stomata close?"})
        reply = answered.structured_content
        assert reply is not None and "at night" not in reply["answer"]
        assert {c["document_id"] for c in reply["citations"]} <= {school.lesson}
    async with session(school.mcp, school.other_admin) as mcp:  # an admin, of another tenant
        await mcp.initialize()
        assert (await mcp.list_resources()).resources == []
        with pytest.raises(MCPError) as elsewhere:
            await mcp.read_resource(uri(school.notes))
        assert elsewhere.value.error.code == -32002
        found = await mcp.call_tool("search", {"query": f"{CANARY} stomata marking notes"})
        assert found.structured_content == {"passages": []}
    async with session(school.mcp, school.teacher) as mcp:  # its owner finds and reads it
        await mcp.initialize()
        found = await mcp.call_tool("search", {"query": f"{CANARY} stomata marking notes"})
        assert CANARY in str(found.structured_content)
        answered = await mcp.call_tool("answer", {"query": "When do stomata close?"})
        assert answered.structured_content is not None
        assert {c["document_id"] for c in answered.structured_content["citations"]} == {
            school.notes
        }
        read = await mcp.read_resource(uri(school.notes))
        assert CANARY in str(read.contents[0])


async def test_the_sdks_auto_mode_falls_back_to_the_handshake(school: SimpleNamespace) -> None:
    """`Client` probes `server/discover` at 2026-07-28 first; our 400 (unsupported version,
    naming the ones we speak) sends it to `initialize`."""
    async with httpx2.AsyncClient(headers=school.student, timeout=60) as http:
        transport = streamable_http_client(school.mcp, http_client=http)
        async with Client(transport, mode="auto") as client:
            assert client.protocol_version == "2025-11-25"
            found = await client.call_tool("search", {"query": QUESTION})
            assert found.structured_content is not None and found.structured_content["passages"]


async def test_the_readmes_client_snippet_runs(
    school: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    """README.md's "MCP server" Python example, as written, against this mesh."""
    snippet = README.split("## MCP server", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    key = school.teacher["authorization"].removeprefix("Bearer ")
    source = (
        snippet.replace('"erk_..."', repr(key))
        .replace('"d_..."', repr(school.lesson))
        .replace("http://127.0.0.1:8787/mcp", school.mcp)
        .replace("asyncio.run(main())", "")
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "README.md", "exec"), namespace)
    await namespace["main"]()
    printed = capsys.readouterr().out
    assert "'answer'" in printed and "'citations'" in printed and LESSON[:40] in printed


# --- plain HTTP ----------------------------------------------------------------------------
class Raw:
    """JSON-RPC by hand, for the messages no SDK would send."""

    def __init__(self, url: str, auth: dict[str, str]) -> None:
        self.url, self.auth, self.headers = url, auth, dict(auth)

    async def post(self, body: Any, **headers: str) -> httpx.Response:
        sent = {**self.headers, **headers, "accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(timeout=60) as http:
            if isinstance(body, bytes):
                sent["content-type"] = "application/json"
                return await http.post(self.url, content=body, headers=sent)
            return await http.post(self.url, json=body, headers=sent)

    async def initialize(self) -> str:
        opened = await self.post(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}},
            }
        )
        assert opened.status_code == 200, opened.text
        assert opened.json()["result"]["protocolVersion"] == "2025-06-18"  # we speak it too
        session_id = opened.headers["mcp-session-id"]
        self.headers.update({"mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"})
        return session_id

    async def call(self, method: str, params: Any = None, id: Any = 2) -> httpx.Response:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        return await self.post(message)


def rpc_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == code, body
    assert body["error"]["data"]["request_id"] == response.headers["x-request-id"]
    return dict(body["error"])


async def test_no_token_is_a_401_with_a_bearer_challenge(school: SimpleNamespace) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient(timeout=30) as http:
        anonymous = await http.post(school.mcp, json=ping)
        assert_error(anonymous, 401, "unauthorized")  # the gateway's one error shape
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="edgerag"'
        forged = await http.post(school.mcp, json=ping, headers={"authorization": "Bearer erk_x"})
        assert_error(forged, 401)
        assert 'error="invalid_token"' in forged.headers["www-authenticate"]
        stream = await http.get(school.mcp, headers=school.teacher)
        assert_error(stream, 405)  # no server-sent stream to listen to
        assert stream.headers["allow"] == "DELETE, POST"


async def test_broken_messages_methods_and_params(school: SimpleNamespace) -> None:
    raw = Raw(school.mcp, school.teacher)
    rpc_error(await raw.post(b'{"jsonrpc": "2.0", "id": 1,'), 400, -32700)
    rpc_error(await raw.post(b"[" * 100 + b"]" * 100), 400, -32700)  # nested past the bound
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]
    assert "batches" in rpc_error(await raw.post(batch), 400, -32600)["message"]
    rpc_error(await raw.post({"jsonrpc": "1.0", "id": 1, "method": "ping"}), 400, -32600)
    rpc_error(await raw.post({"jsonrpc": "2.0", "id": None, "method": "ping"}), 400, -32600)
    rpc_error(await raw.post({"jsonrpc": "2.0", "id": True, "method": "ping"}), 400, -32600)
    no_version = await raw.call("initialize", {"capabilities": {}}, id=7)
    assert rpc_error(no_version, 200, -32602) and no_version.json()["id"] == 7

    await raw.initialize()
    assert (await raw.call("ping")).json() == {"jsonrpc": "2.0", "id": 2, "result": {}}
    unknown = await raw.call("prompts/list", id="p-1")
    assert rpc_error(unknown, 200, -32601) and unknown.json()["id"] == "p-1"
    rpc_error(await raw.call("tools/call", {"arguments": {}}), 200, -32602)  # no name
    rpc_error(await raw.call("tools/call", {"name": "drop_tables"}), 200, -32602)
    rpc_error(await raw.call("tools/call", [1, 2]), 200, -32602)
    rpc_error(await raw.call("resources/read", {"uri": 5}), 200, -32602)
    rpc_error(await raw.call("resources/list", {"cursor": "not-a-cursor"}), 200, -32602)
    # Arguments a tool refuses are its result, for the model to correct: isError, not -32602.
    bad = await raw.call("tools/call", {"name": "search", "arguments": {"query": "x", "top_k": 99}})
    result = bad.json()["result"]
    assert bad.status_code == 200 and result["isError"] is True
    assert "top_k" in result["content"][0]["text"] and "structuredContent" not in result
    notified = await raw.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert notified.status_code == 202 and notified.content == b""
    answered = await raw.post({"jsonrpc": "2.0", "id": 99, "result": {}})  # a client's reply
    assert answered.status_code == 202 and answered.content == b""


async def test_versions_and_sessions_are_checked(school: SimpleNamespace) -> None:
    raw = Raw(school.mcp, school.teacher)
    rpc_error(await raw.call("tools/list"), 400, -32600)  # no session yet
    session_id = await raw.initialize()
    newer = await raw.post(
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
        **{"mcp-protocol-version": "2099-01-01"},
    )
    assert rpc_error(newer, 400, -32600)["data"]["supported"] == ["2025-06-18", "2025-11-25"]
    mismatch = await raw.post(
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
        **{"mcp-protocol-version": "2025-11-25"},
    )
    rpc_error(mismatch, 400, -32600)  # not what this session negotiated
    # Someone else's session id is not theirs: the same 404 as one that never existed.
    thief = Raw(school.mcp, school.student)
    thief.headers["mcp-session-id"] = session_id
    rpc_error(await thief.call("tools/list"), 404, -32600)
    async with httpx.AsyncClient(timeout=30) as http:
        stolen = await http.delete(school.mcp, headers=thief.headers)
        rpc_error(stolen, 404, -32600)
        ended = await http.delete(school.mcp, headers=raw.headers)
        assert ended.status_code == 204 and ended.content == b""
        rpc_error(await http.delete(school.mcp, headers=school.teacher), 400, -32600)
    rpc_error(await raw.call("tools/list"), 404, -32600)  # ended: initialize again


async def test_calls_count_in_their_tools_class_and_answers_spend_the_budget(
    school: SimpleNamespace,
) -> None:
    async def windows() -> tuple[dict[str, int], int]:
        status = await school.client.get("/v1/rate-limit/status", headers=school.student)
        body = status.json()
        used = {w["route_class"]: w["used"] for w in body["windows"] if w["scope"] == "user"}
        return used, int(body["token_budget"]["used"])

    raw = Raw(school.mcp, school.student)
    await raw.initialize()
    before, spent_before = await windows()
    searched = await raw.call("tools/call", {"name": "search", "arguments": {"query": QUESTION}})
    assert searched.status_code == 200 and "x-edgerag-usage-tokens" not in searched.headers
    answer = await raw.call("tools/call", {"name": "answer", "arguments": {"query": QUESTION}})
    tokens = answer.json()["result"]["structuredContent"]["usage"]["total_tokens"]
    await raw.call("tools/list")
    after, spent_after = await windows()
    assert after["search"] - before["search"] == 1 and after["answer"] - before["answer"] == 1
    assert after["api"] - before["api"] == 1  # tools/list (the status route is not counted)
    assert tokens > 0 and spent_after - spent_before == tokens

    # With the day's budget used up, `answer` is refused before any model runs; search is not.
    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    capped = await school.client.patch(
        f"/v1/tenants/{school.tenant}", json={"daily_token_budget": 1}, headers=operator
    )
    assert capped.status_code == 200, capped.text
    refused = await raw.call("tools/call", {"name": "answer", "arguments": {"query": "Why?"}})
    assert_error(refused, 429, "token_budget_exhausted")
    again = await raw.call("tools/call", {"name": "search", "arguments": {"query": QUESTION}})
    assert again.status_code == 200 and again.json()["result"]["isError"] is False


async def test_mcp_calls_are_audited_under_their_session(school: SimpleNamespace) -> None:
    raw = Raw(school.mcp, school.student)
    session_id = await raw.initialize()
    await raw.call("tools/call", {"name": "answer", "arguments": {"query": QUESTION}})
    await raw.call("tools/call", {"name": "ingest_document", "arguments": {"title": "x"}})
    audit = await school.client.get("/v1/audit?limit=10", headers=school.admin)
    entries = audit.json()["entries"]
    assert [(e["tool"], e["outcome"], e["error_code"]) for e in entries[:2]] == [
        ("ingest_document", "error", "tool_forbidden"),
        ("answer", "ok", None),
    ]
    assert {e["session_id"] for e in entries[:2]} == {session_id}
    only = await school.client.get("/v1/audit?tool=answer", headers=school.admin)
    assert only.status_code == 200 and [e["tool"] for e in only.json()["entries"]] == ["answer"]
