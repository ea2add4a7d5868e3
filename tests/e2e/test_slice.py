"""The vertical slice: tenant → document → hybrid search, with tenants kept apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from emulator.mesh import build_mesh
from kernel.runtime.logs import set_sink
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, client_for, ingest, new_tenant

CANARY = (
    "The zorblax canary protocol requires every tutor to water the quartz ferns at dawn. "
    "Quartz ferns wilt if the zorblax schedule is skipped."
)
PHYSICS = (
    "Lift on an aircraft wing arises from the pressure difference between its upper and lower surfaces. "
    "Bernoulli's principle relates the faster airflow over the curved upper surface to lower pressure. "
    "Drag opposes the motion of the aircraft through the air."
)


async def test_tenant_adds_document_and_finds_it_with_exact_offsets(
    client: httpx.AsyncClient,
) -> None:
    _, auth = await new_tenant(client, "school-a")
    doc = await ingest(client, auth, "Flight", PHYSICS)
    response = await client.post(
        "/v1/search", json={"query": "why does a wing produce lift", "top_k": 3}, headers=auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    top = body["results"][0]
    assert top["document_id"] == doc["document_id"]
    assert "Lift" in top["text"]
    assert PHYSICS[top["char_start"] : top["char_end"]] == top["text"]
    assert top["dense_rank"] == 1 and top["keyword_rank"] == 1
    assert set(body["timings_ms"]) >= {"embed_ms", "dense_ms", "keyword_ms", "total_ms"}

    listing = await client.get("/v1/documents", headers=auth)
    assert [d["id"] for d in listing.json()["documents"]] == [doc["document_id"]]
    detail = (await client.get(f"/v1/documents/{doc['document_id']}", headers=auth)).json()
    assert (
        detail["chunk_count"] >= 1 and detail["status"] == "ready" and detail["live_version"] == 1
    )
    assert detail["versions"][0]["kind"] == "text" and len(detail["content_hash"]) == 64


async def test_second_tenant_never_sees_the_canary(client: httpx.AsyncClient) -> None:
    _, auth_a = await new_tenant(client, "school-a")
    _, auth_b = await new_tenant(client, "school-b")
    canary = await ingest(client, auth_a, "Canary", CANARY)
    await ingest(client, auth_b, "Flight", PHYSICS)

    for query in ("zorblax quartz ferns", "what must tutors water at dawn", "zorblax"):
        seen_a = (await client.post("/v1/search", json={"query": query}, headers=auth_a)).json()[
            "results"
        ]
        seen_b = (await client.post("/v1/search", json={"query": query}, headers=auth_b)).json()[
            "results"
        ]
        assert any(hit["document_id"] == canary["document_id"] for hit in seen_a)
        assert all("zorblax" not in hit["text"] for hit in seen_b), seen_b
        assert all(hit["document_id"] != canary["document_id"] for hit in seen_b)

    # Another tenant's document id is indistinguishable from one that never existed.
    probe = await client.get(f"/v1/documents/{canary['document_id']}", headers=auth_b)
    missing = await client.get("/v1/documents/d_" + "0" * 24, headers=auth_b)
    assert_error(probe, 404, "not_found")
    assert probe.json()["error"]["message"].replace(canary["document_id"], "X") == missing.json()[
        "error"
    ]["message"].replace("d_" + "0" * 24, "X")
    listing_b = (await client.get("/v1/documents", headers=auth_b)).json()["documents"]
    assert canary["document_id"] not in {d["id"] for d in listing_b}


async def test_state_survives_a_restart(data_dir: Path, ai: Any) -> None:
    async with client_for(build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)) as first:
        _, auth = await new_tenant(first, "persistent")
        doc = await ingest(first, auth, "Flight", PHYSICS)
    async with client_for(build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)) as second:
        response = await second.post(
            "/v1/search", json={"query": "Bernoulli pressure"}, headers=auth
        )
        assert response.status_code == 200
        assert response.json()["results"][0]["document_id"] == doc["document_id"]


async def test_request_id_travels_through_every_hop(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "traced")
    lines: list[str] = []
    set_sink(lines.append)
    try:
        response = await client.post(
            "/v1/documents",
            json={"title": "t", "text": PHYSICS},
            headers={**auth, "x-request-id": "trace-123"},
        )
    finally:
        set_sink(None)
    assert response.headers["x-request-id"] == "trace-123"
    records = [json.loads(line) for line in lines]
    workers = {
        r["worker"]
        for r in records
        if r.get("event") == "request" and r.get("request_id") == "trace-123"
    }
    assert workers == {"gateway", "ingest"}
    api_key = auth["authorization"].split()[1]
    assert all(api_key not in line for line in lines), "API keys never reach the logs"


async def test_health_lists_workers_bindings_and_stand_ins(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    workers = {w["worker"]: w for w in body["workers"]}
    assert set(workers) == {"gateway", "rag", "ingest", "llm"}
    assert set(workers["ingest"]["bindings"]) == {"DB", "R2", "VECTORIZE", "AI", "SELF", "LLM"}
    assert set(workers["gateway"]["bindings"]) == {"DB", "KV", "RAG", "INGEST", "LLM", "ASSETS"}
    assert all(w["adapter"] == "emulator" for w in workers.values())
    assert "@cf/baai/bge-small-en-v1.5" in workers["rag"]["models"]
    assert any("bge-reranker-base" in s for s in body["stand_ins"])


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    assert_error(await client.get("/metrics"), 401)  # tenant ids and usage are not public
    response = await client.get("/metrics", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert text.count("# TYPE edgerag_requests_total counter") == 1
    assert 'worker="gateway"' in text and 'worker="rag"' in text
    assert 'route="/health"' in text
