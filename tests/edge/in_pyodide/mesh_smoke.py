"""Runs INSIDE Pyodide (edge tier), in a `client` isolate whose only binding is GATEWAY, a
service binding to the gateway Worker: the public API flow end to end through the real
`entry.py` of gateway -> ingest/rag (-> llm), on Miniflare D1/KV/R2 and the Vectorize/AI
stand-ins. It records what it sees; the CPython side (test_edge_mesh.py) asserts on it, so a
failure shows every step's status and body.
"""

from __future__ import annotations

from typing import Any

from _edge_harness import gateway_call as _call

OPERATOR_TOKEN = "edge-operator-token"  # = vars.EDGERAG_OPERATOR_TOKEN in mesh_plan.json
CANARY = (
    "The zorblax canary protocol requires every tutor to water the quartz ferns at dawn. "
    "Quartz ferns wilt if the zorblax schedule is skipped."
)
PHYSICS = (
    "Lift on an aircraft wing arises from the pressure difference between its upper and lower "
    "surfaces. Bernoulli's principle relates the faster airflow over the curved upper surface "
    "to lower pressure. Drag opposes the motion of the aircraft through the air."
)
QUERIES = ("zorblax quartz ferns", "what must tutors water at dawn", "zorblax")
POLL_ATTEMPTS = 30


async def _wait_ready(env: Any, token: str, doc: dict[str, Any], log: list) -> dict[str, Any]:
    """202 with status != ready: poll GET /v1/documents/{id}/status (404 = route not there yet)."""
    body = doc.get("json") or {}
    if body.get("status") == "ready":
        return {"polled": False, "status": "ready"}
    for attempt in range(1, POLL_ATTEMPTS + 1):
        seen = await _call(
            env, "GET", f"/v1/documents/{body.get('document_id')}/status", token=token
        )
        log.append({"poll": attempt, **seen})
        if seen["status"] == 404:
            return {"polled": True, "status": body.get("status"), "route": "missing"}
        state = (seen["json"] or {}).get("status")
        if state in ("ready", "failed"):
            return {"polled": True, "status": state, "attempts": attempt}
    return {"polled": True, "status": "timeout"}


async def main(env: Any, ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"text": {"canary": CANARY, "physics": PHYSICS}}
    out["health"] = await _call(env, "GET", "/health")
    out["tenant_a"] = await _call(
        env, "POST", "/v1/tenants", token=OPERATOR_TOKEN, body={"name": "edge-a"}
    )
    out["tenant_b"] = await _call(
        env, "POST", "/v1/tenants", token=OPERATOR_TOKEN, body={"name": "edge-b"}
    )
    out["tenant_no_auth"] = await _call(
        env, "POST", "/v1/tenants", token="wrong", body={"name": "x"}
    )
    key_a = (out["tenant_a"]["json"] or {}).get("api_key")
    key_b = (out["tenant_b"]["json"] or {}).get("api_key")
    if not (key_a and key_b):
        return out
    polls: list = []
    out["polls"] = polls
    out["ingest_a"] = await _call(
        env, "POST", "/v1/documents", token=key_a, body={"title": "Canary", "text": CANARY}
    )
    out["ingest_b"] = await _call(
        env, "POST", "/v1/documents", token=key_b, body={"title": "Flight", "text": PHYSICS}
    )
    out["ready_a"] = await _wait_ready(env, key_a, out["ingest_a"], polls)
    out["ready_b"] = await _wait_ready(env, key_b, out["ingest_b"], polls)
    out["search"] = []
    for query in QUERIES:
        out["search"].append(
            {
                "query": query,
                "a": await _call(
                    env, "POST", "/v1/search", token=key_a, body={"query": query, "top_k": 5}
                ),
                "b": await _call(
                    env, "POST", "/v1/search", token=key_b, body={"query": query, "top_k": 5}
                ),
            }
        )
    # Placeholder for the answer step (see test_answer_with_verified_citation_placeholder).
    out["answer_a"] = await _call(
        env, "POST", "/v1/answer", token=key_a, body={"query": QUERIES[1]}
    )
    out["answer_b"] = await _call(
        env, "POST", "/v1/answer", token=key_b, body={"query": QUERIES[1]}
    )
    # A streamed chat turn: the Workers AI stream through the Cloudflare AI adapter (JSON mode
    # is not asked on streams), verified sentence by sentence in rag, SSE through the gateway.
    session = await _call(env, "POST", "/v1/chat/sessions", token=key_a, body={})
    session_id = (session["json"] or {}).get("session_id")
    out["chat_stream"] = await _call(
        env,
        "POST",
        f"/v1/chat/sessions/{session_id}/messages",
        token=key_a,
        body={"content": QUERIES[1], "stream": True},
        keep=50_000,
    )
    # Tools in Pyodide: the dispatcher (asyncio.wait_for), rag -> ingest over the INGEST
    # binding as the caller, the audit row in D1; tenant B asking for A's document gets 404.
    canary_id = (out["ingest_a"]["json"] or {}).get("document_id")
    out["tool_search"] = await _call(
        env, "POST", "/v1/tools/search_knowledge_base", token=key_a, body={"query": QUERIES[0]}
    )
    out["tool_document"] = await _call(
        env, "POST", "/v1/tools/get_document", token=key_a, body={"document_id": canary_id}
    )
    out["tool_document_b"] = await _call(
        env, "POST", "/v1/tools/get_document", token=key_b, body={"document_id": canary_id}
    )
    # Speech in Pyodide: aura-1's ReadableStream read through the Cloudflare AI adapter, cached
    # in R2 by the llm Worker, relayed as audio through rag and the gateway.
    speak = {"text": "Lift comes from a pressure difference.", "format": "wav"}
    out["tts"] = await _call(env, "POST", "/v1/tts", token=key_a, body=speak, keep=60)
    out["tts_again"] = await _call(env, "POST", "/v1/tts", token=key_a, body=speak, keep=60)
    out["audit_a"] = await _call(env, "GET", "/v1/audit", token=key_a)
    out["audit_b"] = await _call(env, "GET", "/v1/audit", token=key_b)
    out["metrics"] = await _call(env, "GET", "/metrics", token=OPERATOR_TOKEN, keep=200_000)
    return out
