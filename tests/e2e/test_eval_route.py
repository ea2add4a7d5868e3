"""`POST /v1/eval`: a tenant scores retrieval on its own golden set."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import assert_error, ingest, new_tenant
from tests.e2e.test_answers import BIOLOGY, PHYSICS


async def test_tenant_golden_set(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "golden")
    bio = await ingest(client, auth, "Biology", BIOLOGY)
    phys = await ingest(client, auth, "Physics", PHYSICS)
    golden = {
        "questions": [
            {
                "question": "Which light does chlorophyll absorb?",
                "relevant_document_ids": [bio["document_id"]],
            },
            {
                "question": "What does friction oppose?",
                "relevant_document_ids": [phys["document_id"]],
            },
        ],
        "per_question": True,
    }
    response = await client.post("/v1/eval", json=golden, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    for mode in ("dense", "keyword", "hybrid"):
        metrics = body["modes"][mode]
        assert set(metrics) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "precision@3"}
        assert metrics["mrr@10"] == 1.0, (mode, metrics)  # each question's document ranks first

    too_many = {"questions": [{"question": "q", "relevant_document_ids": ["d"]}] * 201}
    assert_error(await client.post("/v1/eval", json=too_many, headers=auth), 422)
    assert_error(await client.post("/v1/eval", json={"questions": []}, headers=auth), 422)
