"""Runs INSIDE Pyodide (edge tier, test_edge_traces.py), in a `client` isolate whose bindings
are GATEWAY (a service binding to the gateway) and the var COLLECTOR (the fake OTLP collector
the CPython side runs on loopback). Requests carry a `traceparent`; the Workers export their
spans with the Cloudflare adapter (the runtime's global fetch) from `ctx.waitUntil` after
replying, so this script waits — by asking the collector — until each trace has arrived from
every Worker it crossed, before the harness run ends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import js
from _edge_harness import gateway_call as _call

OPERATOR_TOKEN = "edge-operator-token"  # = secrets.EDGERAG_OPERATOR_TOKEN in the plan
CANARY = "The zorblax canary protocol requires every tutor to water the quartz ferns at dawn."
PARENT = "00f067aa0ba902b7"
TRACES = {  # what is asked, under which trace id, and which Workers must export spans of it
    "search": ("4bf92f3577b34da6a3ce929d0e0e4736", ["edgerag-gateway", "edgerag-rag"]),
    "answer": (
        "5bf92f3577b34da6a3ce929d0e0e4736",
        ["edgerag-gateway", "edgerag-rag", "edgerag-llm"],
    ),
    "tool": ("6bf92f3577b34da6a3ce929d0e0e4736", ["edgerag-gateway", "edgerag-rag"]),
    # A streamed chat turn: each Worker's span ends, and is exported, when its stream does.
    "chat": ("7bf92f3577b34da6a3ce929d0e0e4736", ["edgerag-gateway", "edgerag-rag", "edgerag-llm"]),
}
POLL_ATTEMPTS = 40


async def _traced(
    env: Any, path: str, key: str, body: dict[str, Any], trace_id: str
) -> dict[str, Any]:
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "traceparent": f"00-{trace_id}-{PARENT}-01",
    }
    response = await env.GATEWAY.fetch(
        f"https://gateway.edge{path}", method="POST", headers=headers, body=json.dumps(body)
    )
    text = await response.text()
    return {"status": int(response.status), "text": text[-4000:]}  # a stream ends in `done`


async def _seen(env: Any, trace_id: str) -> list[str]:
    response = await js.fetch(f"{env.COLLECTOR}/seen?trace={trace_id}")
    return list(json.loads(await response.text()))


async def main(env: Any, ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tenant = await _call(env, "POST", "/v1/tenants", token=OPERATOR_TOKEN, body={"name": "traced"})
    key = (tenant["json"] or {}).get("api_key")
    out["tenant"] = tenant["status"]
    if not key:
        return out
    doc = await _call(
        env, "POST", "/v1/documents", token=key, body={"title": "Canary", "text": CANARY}
    )
    document_id = (doc["json"] or {}).get("document_id")
    for _ in range(POLL_ATTEMPTS):
        status = await _call(env, "GET", f"/v1/documents/{document_id}/status", token=key)
        out["ready"] = (status["json"] or {}).get("status")
        if out["ready"] in ("ready", "failed"):
            break
    query = {"query": "zorblax quartz ferns"}
    out["search"] = await _traced(
        env, "/v1/search", key, {**query, "top_k": 3}, TRACES["search"][0]
    )
    out["answer"] = await _traced(env, "/v1/answer", key, query, TRACES["answer"][0])
    out["tool"] = await _traced(
        env, "/v1/tools/search_knowledge_base", key, query, TRACES["tool"][0]
    )
    session = await _call(env, "POST", "/v1/chat/sessions", token=key, body={})
    turn = {"content": "what must tutors water at dawn", "stream": True}
    path = f"/v1/chat/sessions/{(session['json'] or {}).get('session_id')}/messages"
    out["chat"] = await _traced(env, path, key, turn, TRACES["chat"][0])
    out["seen"] = {}
    for name, (trace_id, services) in TRACES.items():
        for _ in range(POLL_ATTEMPTS):  # the exports run after the replies, in waitUntil
            seen = await _seen(env, trace_id)
            if set(services) <= set(seen):
                break
            await asyncio.sleep(0.25)
        out["seen"][name] = seen
    return out
