"""Traces end to end: the mesh exporting OTLP/HTTP JSON to a fake collector on loopback.

A search, an answer (a model call through the llm Worker, to a provider speaking Anthropic's wire
format), a streamed chat answer and a tool call each come out as one trace across the Workers,
parented span by span, continuing the caller's `traceparent` (an invalid one starts a new
trace). A canary word in the document, the queries and the questions never reaches the collector
unless the tenant opted in. A collector that is down or stuck never fails or holds a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from kernel.bindings import traces
from kernel.runtime.metrics import registry
from tests.e2e.conftest import OPERATOR_TOKEN, client_for, ingest, new_tenant
from tests.e2e.devserver import free_port
from tests.e2e.sse import events

CANARY = "zanzibarquux"  # in the document, every query and question: never in a span
TEXT = (
    f"Chlorophyll absorbs red and blue light and reflects green light. The {CANARY} pigment"
    " of the leaf is where photosynthesis turns light, water and carbon dioxide into glucose."
)
QUESTION = f"Which light does chlorophyll absorb in the {CANARY} leaf?"
SENTENCE = "Chlorophyll absorbs red and blue light and reflects green light."
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SECRET = "collector-secret-token"
ANTHROPIC = {
    "EDGERAG_LLM_PROVIDERS": "anthropic",
    "ANTHROPIC_API_KEY": "sk-fake",
    "ANTHROPIC_BASE_URL": "https://anthropic.fake",
    "EDGERAG_ANTHROPIC_MODEL": "claude-requested",
}


class Collector:
    """An OTLP/HTTP receiver: records every POST; while `gate` is unset it holds each one."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.gate: asyncio.Event | None = None
        self.waiting = 0
        self.held = asyncio.Event()  # set once an export waits at the gate

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers, body))
        if self.gate is not None:
            self.waiting += 1
            self.held.set()
            await self.gate.wait()
            self.waiting -= 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    def spans(self) -> list[dict[str, Any]]:
        """Every exported span, with its service and its attributes as a plain dict."""
        found = []
        for _, _, body in self.requests:
            for resource in json.loads(body)["resourceSpans"]:
                service = _attrs(resource["resource"]["attributes"])["service.name"]
                for scope in resource["scopeSpans"]:
                    for span in scope["spans"]:
                        found.append(
                            {**span, "service": service, "attrs": _attrs(span["attributes"])}
                        )
        return found


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for item in items:
        [(kind, value)] = item["value"].items()
        out[item["key"]] = int(value) if kind == "intValue" else value
    return out


@contextlib.asynccontextmanager
async def listening(app: Any) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the collector did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if isinstance(app, Collector) and app.gate is not None:
            app.gate.set()
        server.should_exit = True
        await task


class FakeAnthropic:
    """`POST /v1/messages` as Anthropic answers it: marker text citing source 1."""

    def __init__(self) -> None:
        self.overloaded = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.overloaded:
            error = {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            }
            return httpx.Response(529, json=error)
        reply = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "claude-answered",  # what served it, not what was asked for
            "content": [{"type": "text", "text": f"{SENTENCE} [1]"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 120, "output_tokens": 14},
        }
        return httpx.Response(200, json=reply)


def traced_mesh(
    data_dir: Path, ai: Any, endpoint: str, fake: FakeAnthropic | None = None, **extra: str
) -> Mesh:
    """The mesh answering through Anthropic's wire format, exporting spans to `endpoint`."""
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(fake or FakeAnthropic())),
        vars={
            "EDGERAG_OTLP_ENDPOINT": endpoint,
            "EDGERAG_OTLP_HEADERS": f"authorization=Bearer%20{SECRET}",
            **ANTHROPIC,
            **extra,
        },
    )


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    sink = Collector()
    async with listening(sink) as url:
        yield sink, url


@pytest.fixture
async def school(
    collector: tuple[Collector, str], data_dir: Path, ai: Any
) -> AsyncIterator[tuple[Mesh, httpx.AsyncClient, dict[str, str]]]:
    mesh = traced_mesh(data_dir, ai, collector[1])
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "traced")
        await ingest(client, auth, "Leaves", TEXT)
        await mesh.drain()
        yield mesh, client, auth
    await mesh.drain()


def one_trace(spans: list[dict[str, Any]], trace_id: str) -> dict[str, dict[str, Any]]:
    """The trace's spans by id, each parent inside the trace except the entry's."""
    mine = {s["spanId"]: s for s in spans if s["traceId"] == trace_id}
    assert mine, f"no span of trace {trace_id}"
    return mine


def named(trace: dict[str, dict[str, Any]], service: str, name: str) -> dict[str, Any]:
    found = [s for s in trace.values() if s["service"] == service and s["name"] == name]
    assert len(found) == 1, (
        service,
        name,
        sorted((s["service"], s["name"]) for s in trace.values()),
    )
    return found[0]


def child_of(span: dict[str, Any], parent: dict[str, Any]) -> bool:
    return span.get("parentSpanId") == parent["spanId"] and span["traceId"] == parent["traceId"]


def assert_no_content(sink: Collector) -> None:
    for _, _, body in sink.requests:
        assert CANARY not in body.decode(), "request content reached the collector"


async def test_a_search_is_one_trace_from_the_callers_traceparent_to_each_stage(
    school: tuple[Mesh, httpx.AsyncClient, dict[str, str]], collector: tuple[Collector, str]
) -> None:
    mesh, client, auth = school
    sink = collector[0]
    response = await client.post(
        "/v1/search",
        json={"query": f"chlorophyll {CANARY} light", "top_k": 3},
        headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "vendor=x1"},
    )
    assert response.status_code == 200 and response.json()["results"]
    await mesh.drain()
    trace = one_trace(sink.spans(), TRACE)
    entry = named(trace, "edgerag-gateway", "POST /v1/search")
    assert entry["parentSpanId"] == PARENT and entry["kind"] == 2
    assert entry["attrs"]["http.response.status_code"] == 200
    assert entry["attrs"]["edgerag.request_id"] == response.headers["x-request-id"]
    assert entry["attrs"]["edgerag.tenant_id"].startswith("t_")
    hop = named(trace, "edgerag-gateway", "POST rag")
    assert child_of(hop, entry) and hop["kind"] == 3
    rag = named(trace, "edgerag-rag", "POST /search")
    assert child_of(rag, hop) and rag["traceState"] == "vendor=x1"
    assert rag["attrs"]["edgerag.request_id"] == response.headers["x-request-id"]
    retrieval = named(trace, "edgerag-rag", "retrieval edgerag-chunks")
    assert child_of(retrieval, rag) and retrieval["attrs"]["gen_ai.operation.name"] == "retrieval"
    for stage in ("filters", "embed", "dense", "keyword", "fuse", "hydrate", "rerank"):
        assert child_of(named(trace, "edgerag-rag", f"retrieval.{stage}"), retrieval), stage
    embed = named(trace, "edgerag-rag", "embeddings @cf/baai/bge-small-en-v1.5")
    assert child_of(embed, named(trace, "edgerag-rag", "retrieval.embed"))
    assert embed["attrs"]["gen_ai.provider.name"] == "cloudflare.workers_ai"
    rerank = named(trace, "edgerag-rag", "rerank @cf/baai/bge-reranker-base")
    assert child_of(rerank, named(trace, "edgerag-rag", "retrieval.rerank"))
    path, headers, _ = sink.requests[-1]
    assert path == "/v1/traces" and headers["authorization"] == f"Bearer {SECRET}"
    assert headers["content-type"] == "application/json"
    assert_no_content(sink)


async def test_an_answer_is_traced_into_the_llm_worker_and_its_model_call(
    school: tuple[Mesh, httpx.AsyncClient, dict[str, str]], collector: tuple[Collector, str]
) -> None:
    mesh, client, auth = school
    sink = collector[0]
    response = await client.post(
        "/v1/answer",
        json={"query": QUESTION},
        headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["generated_by"]["provider"] == "anthropic"
    await mesh.drain()
    trace = one_trace(sink.spans(), TRACE)
    assert {s["service"] for s in trace.values()} >= {
        "edgerag-gateway",
        "edgerag-rag",
        "edgerag-llm",
    }
    rag = named(trace, "edgerag-rag", "POST /answer")
    llm = named(trace, "edgerag-llm", "POST /generate")
    hop = trace[llm["parentSpanId"]]  # the rag Worker's call to the llm Worker
    assert (hop["service"], hop["name"], hop["kind"]) == ("edgerag-rag", "POST llm", 3)
    assert child_of(hop, rag)
    chat = named(trace, "edgerag-llm", "chat claude-requested")
    assert child_of(chat, llm) and chat["kind"] == 3
    attrs = chat["attrs"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-requested"
    assert attrs["gen_ai.response.model"] == "claude-answered"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (120, 14)
    assert attrs["server.address"] == "anthropic.fake" and attrs["server.port"] == 443
    assert attrs["gen_ai.request.stream"] is False and "error.type" not in attrs
    assert not any(k.startswith("gen_ai.input") or k == "gen_ai.system_instructions" for k in attrs)
    assert_no_content(sink)


async def test_a_failed_model_call_carries_its_error_type(
    data_dir: Path, ai: Any, collector: tuple[Collector, str]
) -> None:
    sink, url = collector
    fake = FakeAnthropic()
    mesh = traced_mesh(data_dir, ai, url, fake)
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "overloaded")
        await ingest(client, auth, "Leaves", TEXT)
        fake.overloaded = True
        response = await client.post("/v1/answer", json={"query": QUESTION}, headers=auth)
        assert response.status_code == 503, response.text
        await mesh.drain()
    [chat] = [s for s in sink.spans() if s["name"] == "chat claude-requested"]
    assert chat["attrs"]["error.type"] == "overloaded" and chat["status"] == {"code": 2}
    assert chat["attrs"]["edgerag.llm.attempts"] == 3  # one span covers the provider's retries
    [llm] = [s for s in sink.spans() if s["name"] == "POST /generate"]
    assert child_of(chat, llm) and llm["attrs"]["http.response.status_code"] == 503
    assert llm["attrs"]["error.type"] == "503" and llm["status"] == {"code": 2}


async def test_a_tool_call_is_an_execute_tool_span_over_its_retrieval(
    school: tuple[Mesh, httpx.AsyncClient, dict[str, str]], collector: tuple[Collector, str]
) -> None:
    mesh, client, auth = school
    sink = collector[0]
    response = await client.post(
        "/v1/tools/search_knowledge_base",
        json={"query": f"{CANARY} chlorophyll"},
        headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"},
    )
    assert response.status_code == 200, response.text
    unknown = await client.post("/v1/tools/no_such_tool", json={}, headers=auth)
    assert unknown.status_code == 404
    await mesh.drain()
    trace = one_trace(sink.spans(), TRACE)
    tool = named(trace, "edgerag-rag", "execute_tool search_knowledge_base")
    assert tool["kind"] == 1 and child_of(tool, named(trace, "edgerag-rag", "POST /tools/{name}"))
    assert tool["attrs"]["gen_ai.operation.name"] == "execute_tool"
    assert tool["attrs"]["gen_ai.tool.name"] == "search_knowledge_base"
    assert tool["attrs"]["edgerag.tool.requested_by"] == "client"
    assert "gen_ai.tool.call.arguments" not in tool["attrs"]
    assert child_of(named(trace, "edgerag-rag", "retrieval edgerag-chunks"), tool)
    [failed] = [s for s in sink.spans() if s["name"] == "execute_tool no_such_tool"]
    assert failed["attrs"]["error.type"] == "unknown_tool" and failed["status"] == {"code": 2}
    assert_no_content(sink)


async def test_a_streamed_answer_ends_its_spans_with_the_stream(
    data_dir: Path, ai: Any, collector: tuple[Collector, str]
) -> None:
    sink, url = collector
    mesh = build_mesh(  # the default provider: Workers AI (the emulator's streaming stand-in)
        data_dir, operator_token=OPERATOR_TOKEN, ai=ai, vars={"EDGERAG_OTLP_ENDPOINT": url}
    )
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "streamed")
        await ingest(client, auth, "Leaves", TEXT)
        session = (await client.post("/v1/chat/sessions", json={}, headers=auth)).json()
        async with client.stream(
            "POST",
            f"/v1/chat/sessions/{session['session_id']}/messages",
            json={"content": QUESTION, "stream": True},
            headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"},
        ) as response:
            assert response.status_code == 200
            kinds = [kind async for kind, _ in events(response.aiter_lines())]
        assert kinds[-1] == "done"
        await mesh.drain()
    trace = one_trace(sink.spans(), TRACE)
    gateway = named(trace, "edgerag-gateway", "POST /v1/chat/sessions/{session_id}/messages")
    llm = named(trace, "edgerag-llm", "POST /generate")
    chat = named(trace, "edgerag-llm", "chat @cf/meta/llama-3.3-70b-instruct-fp8-fast")
    assert child_of(chat, llm) and chat["attrs"]["gen_ai.request.stream"] is True
    assert chat["attrs"]["gen_ai.provider.name"] == "cloudflare.workers_ai"
    assert chat["attrs"]["gen_ai.usage.output_tokens"] > 0  # recorded as the stream ended
    assert "gen_ai.response.time_to_first_chunk" in chat["attrs"]
    # Each span ends no earlier than the stream it carries.
    assert int(gateway["endTimeUnixNano"]) >= int(llm["endTimeUnixNano"])
    assert int(llm["endTimeUnixNano"]) >= int(chat["endTimeUnixNano"])
    assert_no_content(sink)


@pytest.mark.parametrize(
    "header",
    [
        f"00-{TRACE.upper()}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"ff-{TRACE}-{PARENT}-01",
        "garbage",
    ],
)
async def test_an_invalid_traceparent_starts_a_new_trace(
    school: tuple[Mesh, httpx.AsyncClient, dict[str, str]],
    collector: tuple[Collector, str],
    header: str,
) -> None:
    mesh, client, auth = school
    sink = collector[0]
    before = len(sink.requests)
    response = await client.post(
        "/v1/search", json={"query": "chlorophyll"}, headers={**auth, "traceparent": header}
    )
    assert response.status_code == 200
    await mesh.drain()
    spans = [s for _, _, body in sink.requests[before:] for s in _spans_of(body)]
    [entry] = [s for s in spans if s["name"] == "POST /v1/search"]
    assert "parentSpanId" not in entry and entry["traceId"] not in (TRACE, TRACE.upper())
    assert entry["traceId"] != "0" * 32 and len(entry["traceId"]) == 32
    rag = next(s for s in spans if s["name"] == "POST /search")
    assert rag["traceId"] == entry["traceId"]  # still one trace across the Workers


def _spans_of(body: bytes) -> Iterator[dict[str, Any]]:
    for resource in json.loads(body)["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            yield from scope["spans"]


async def test_content_is_exported_only_for_a_tenant_that_opted_in(
    data_dir: Path, ai: Any, collector: tuple[Collector, str]
) -> None:
    sink, url = collector
    first = traced_mesh(data_dir, ai, url)
    async with client_for(first) as client:
        opted, opted_auth = await new_tenant(client, "opted-in")
        _, other_auth = await new_tenant(client, "not-opted-in")
        for auth in (opted_auth, other_auth):
            await ingest(client, auth, "Leaves", TEXT)
        await first.drain()
    # The operator lists the tenant; every Worker reads the same setting.
    mesh = traced_mesh(data_dir, ai, url, EDGERAG_TRACE_CONTENT_TENANTS=opted)
    async with client_for(mesh) as client:
        for auth, trace_id in ((opted_auth, TRACE), (other_auth, TRACE[::-1])):
            response = await client.post(
                "/v1/answer",
                json={"query": QUESTION},
                headers={**auth, "traceparent": f"00-{trace_id}-{PARENT}-01"},
            )
            assert response.status_code == 200, response.text
        await mesh.drain()
    spans = sink.spans()
    opted_trace, other_trace = one_trace(spans, TRACE), one_trace(spans, TRACE[::-1])
    retrieval = named(opted_trace, "edgerag-rag", "retrieval edgerag-chunks")
    assert retrieval["attrs"]["gen_ai.retrieval.query.text"] == QUESTION
    chat = named(opted_trace, "edgerag-llm", "chat claude-requested")
    assert CANARY in chat["attrs"]["gen_ai.input.messages"]  # the question and its sources
    assert "sources" in chat["attrs"]["gen_ai.system_instructions"]
    assert CANARY not in json.dumps(list(other_trace.values()))


async def test_a_collector_that_is_down_fails_no_request(data_dir: Path, ai: Any) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    mesh = traced_mesh(data_dir, ai, down)
    failed = registry("gateway").counter_value("edgerag_trace_exports_total", outcome="network")
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "collector-down")
        await ingest(client, auth, "Leaves", TEXT)
        response = await client.post("/v1/search", json={"query": "chlorophyll"}, headers=auth)
        assert response.status_code == 200 and response.json()["results"]
        await mesh.drain()
    after = registry("gateway").counter_value("edgerag_trace_exports_total", outcome="network")
    assert after > failed


async def test_a_stuck_collector_holds_no_reply_and_its_backlog_is_bounded(
    school: tuple[Mesh, httpx.AsyncClient, dict[str, str]], collector: tuple[Collector, str]
) -> None:
    mesh, client, auth = school
    sink = collector[0]
    sink.gate = asyncio.Event()  # from now on every export waits until the test releases it
    dropped = registry("gateway").counter_value(
        "edgerag_trace_spans_dropped_total", reason="backlog"
    )
    first = await client.post("/v1/search", json={"query": "chlorophyll"}, headers=auth)
    assert first.status_code == 200 and first.json()["results"]
    async with asyncio.timeout(30):  # a hang guard, not a timing assertion
        await sink.held.wait()  # the first request's export reached the collector, and waits
    for _ in range(traces.MAX_IN_FLIGHT + 1):  # answered while the collector holds its exports
        more = await client.post("/v1/search", json={"query": "green light"}, headers=auth)
        assert more.status_code == 200 and more.json()["results"]
    assert not sink.gate.is_set() and sink.waiting > 0
    await asyncio.sleep(0.05)  # let the last exports start (and find the backlog full)
    assert (
        registry("gateway").counter_value("edgerag_trace_spans_dropped_total", reason="backlog")
        > dropped
    )
    sink.gate.set()
    await mesh.drain()
