"""Edge tier: traces from the real Workers in Pyodide, exported by the Cloudflare adapter.

One harness run of a plan written here: the four Workers exactly as in mesh_plan.json (bundles,
bindings), plus EDGERAG_OTLP_ENDPOINT / EDGERAG_OTLP_HEADERS pointing at a fake OTLP collector
this test serves on loopback. A client script (in_pyodide/trace_smoke.py) searches, answers and
calls a tool with a `traceparent`; every Worker then exports from `ctx.waitUntil` through
`kernel.bindings.cloudflare.CloudflareHttp` — the SDK's fetch, i.e. the runtime's global fetch —
and the assertions here read what arrived: one trace per request across gateway, rag and llm,
spans parented across the Pyodide isolates, GenAI attributes, no request content.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKERS = ("gateway", "rag", "ingest", "llm")
PARENT = "00f067aa0ba902b7"
SECRET = "edge-collector-secret"
CANARY_WORD = "zorblax"

pytestmark = pytest.mark.edge


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[tuple[str, dict[str, str], bytes]] = []

    def spans(self) -> list[dict[str, Any]]:
        with self.lock:
            bodies = [body for _, _, body in self.posts]
        found = []
        for body in bodies:
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


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Received, str]]:
    """POST /v1/traces records; GET /seen?trace=<id> lists the services that sent spans of it."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with received.lock:
                received.posts.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self._reply(b"{}")

        def do_GET(self) -> None:
            trace = parse_qs(urlsplit(self.path).query).get("trace", [""])[0]
            services = sorted({s["service"] for s in received.spans() if s["traceId"] == trace})
            self._reply(json.dumps(services).encode())

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _plan(path: Path, endpoint: str) -> Path:
    """mesh_plan.json's four Workers and client, with the collector configured on each."""
    mesh = json.loads((HERE / "mesh_plan.json").read_text())
    tracing = {
        "EDGERAG_OTLP_ENDPOINT": endpoint,
        "EDGERAG_OTLP_HEADERS": f"authorization=Bearer%20{SECRET}",
    }
    workers = {name: dict(mesh["workers"][name]) for name in WORKERS}
    for spec in workers.values():
        spec["vars"] = {**spec.get("vars", {}), **tracing}
    workers["client"] = {**mesh["workers"]["client"], "vars": {"COLLECTOR": endpoint}}
    plan = {
        "_comment": "written by tests/edge/test_edge_traces.py",
        "workersDir": str(ROOT / "workers"),
        "migrations": {"DB": str(ROOT / "migrations")},
        "resources": {k: v for k, v in mesh["resources"].items() if k != "scratch"},
        "workers": workers,
        "steps": [{"script": str(HERE / "in_pyodide" / "trace_smoke.py"), "worker": "client"}],
    }
    path.write_text(json.dumps(plan, indent=2))
    return path


@pytest.fixture(scope="module")
def run(
    harness: Any, collector: tuple[Received, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    result: dict[str, Any] = harness(
        _plan(tmp_path_factory.mktemp("traces") / "plan.json", collector[1])
    )
    [step] = result["steps"]
    assert step["kind"] == "script" and step["ok"], step
    out: dict[str, Any] = step["result"]
    assert out["ready"] == "ready", out
    for name in ("search", "answer", "tool", "chat"):
        assert out[name]["status"] == 200, out[name]
    return out


def _trace(received: Received, trace_id: str) -> dict[str, dict[str, Any]]:
    return {s["spanId"]: s for s in received.spans() if s["traceId"] == trace_id}


def _one(trace: dict[str, dict[str, Any]], service: str, name: str) -> dict[str, Any]:
    found = [s for s in trace.values() if s["service"] == service and s["name"] == name]
    assert len(found) == 1, (
        service,
        name,
        sorted((s["service"], s["name"]) for s in trace.values()),
    )
    return found[0]


def test_every_worker_exports_through_the_runtimes_fetch(
    run: dict[str, Any], collector: tuple[Received, str]
) -> None:
    received = collector[0]
    assert run["seen"]["answer"] == ["edgerag-gateway", "edgerag-llm", "edgerag-rag"], run["seen"]
    with received.lock:
        posts = list(received.posts)
    assert posts and all(path == "/v1/traces" for path, _, _ in posts)
    for _, headers, body in posts:
        assert headers["authorization"] == f"Bearer {SECRET}"
        assert headers["content-type"] == "application/json"
        assert CANARY_WORD not in body.decode(), "request content reached the collector"


def test_an_answer_joins_gateway_rag_and_llm_with_genai_attributes(
    run: dict[str, Any], collector: tuple[Received, str]
) -> None:
    trace = _trace(collector[0], "5bf92f3577b34da6a3ce929d0e0e4736")
    entry = _one(trace, "edgerag-gateway", "POST /v1/answer")
    assert entry["parentSpanId"] == PARENT and entry["flags"] & 0x200  # the caller's span
    llm = _one(trace, "edgerag-llm", "POST /generate")
    hop = trace[llm["parentSpanId"]]
    assert (hop["service"], hop["name"]) == ("edgerag-rag", "POST llm")
    rag = trace[hop["parentSpanId"]]
    assert (rag["service"], rag["name"]) == ("edgerag-rag", "POST /answer")
    assert trace[rag["parentSpanId"]]["parentSpanId"] == entry["spanId"]  # via the gateway's hop
    [chat] = [s for s in trace.values() if s["attrs"].get("gen_ai.operation.name") == "chat"]
    assert chat["parentSpanId"] == llm["spanId"] and chat["kind"] == 3
    assert chat["attrs"]["gen_ai.provider.name"] == "cloudflare.workers_ai"
    assert chat["attrs"]["gen_ai.request.model"] == chat["attrs"]["gen_ai.response.model"]
    assert chat["attrs"]["gen_ai.usage.input_tokens"] >= 0


def test_search_and_tool_traces_reach_their_stages(
    run: dict[str, Any], collector: tuple[Received, str]
) -> None:
    search = _trace(collector[0], "4bf92f3577b34da6a3ce929d0e0e4736")
    retrieval = _one(search, "edgerag-rag", "retrieval edgerag-chunks")
    assert search[retrieval["parentSpanId"]]["name"] == "POST /search"
    stages = {s["name"] for s in search.values() if s.get("parentSpanId") == retrieval["spanId"]}
    assert {
        "retrieval.filters",
        "retrieval.embed",
        "retrieval.dense",
        "retrieval.hydrate",
    } <= stages
    tool = _trace(collector[0], "6bf92f3577b34da6a3ce929d0e0e4736")
    call = _one(tool, "edgerag-rag", "execute_tool search_knowledge_base")
    assert call["attrs"]["gen_ai.tool.name"] == "search_knowledge_base"
    assert _one(tool, "edgerag-rag", "retrieval edgerag-chunks")["parentSpanId"] == call["spanId"]


def test_a_streamed_chat_turn_is_exported_when_its_streams_end(
    run: dict[str, Any], collector: tuple[Received, str]
) -> None:
    assert "event: done" in run["chat"]["text"], run["chat"]
    trace = _trace(collector[0], "7bf92f3577b34da6a3ce929d0e0e4736")
    entry = _one(trace, "edgerag-gateway", "POST /v1/chat/sessions/{session_id}/messages")
    llm = _one(trace, "edgerag-llm", "POST /generate")
    [chat] = [s for s in trace.values() if s["attrs"].get("gen_ai.operation.name") == "chat"]
    assert chat["parentSpanId"] == llm["spanId"] and chat["attrs"]["gen_ai.request.stream"] is True
    assert int(entry["endTimeUnixNano"]) >= int(llm["endTimeUnixNano"])
