"""The emulated reranker reuses the passage vectors the emulated AI computed at ingest.

The deployed rag code calls the documented `@cf/baai/bge-reranker-base` API ({query,
contexts: [{text}]}) unchanged; the emulator remembers every embedding it computed (keyed by
a hash of model, pooling and text), so its stand-in reranker runs no forward pass for a passage
it embedded before. Forward passes are counted on the encoder, not timed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from emulator.ai import EMBEDDING_MODEL, RERANKER_MODEL, EmulatedAI
from emulator.ai.embeddings import F32, MiniLMEncoder, Pooling
from emulator.mesh import build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN, client_for, ingest, new_tenant

pytestmark = pytest.mark.slow  # runs the local embedding model

PASSAGES = [
    "Glaciers form where snow accumulates faster than it melts, compacting into ice.",
    "A glacier moves under its own weight, flowing downhill like a very slow river.",
    "Deserts receive little rain, and their dunes shift with the prevailing winds.",
]
QUESTION = "How does a glacier move?"


class CountingEncoder(MiniLMEncoder):
    """The real model, recording every text it runs a forward pass for."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], *, pooling: Pooling = "mean") -> F32:
        self.encoded.extend(texts)
        return super().encode(texts, pooling=pooling)


@pytest.fixture(scope="module")
def encoder() -> CountingEncoder:
    return CountingEncoder()


async def test_rerank_after_embedding_runs_no_passage_forward_pass(
    encoder: CountingEncoder, tmp_path: Path
) -> None:
    ai = EmulatedAI(encoder=encoder, embedding_cache=tmp_path / "embeddings.sqlite")
    embedded = await ai.run(EMBEDDING_MODEL, {"text": PASSAGES})  # what ingest does
    assert len(embedded["data"]) == 3
    encoder.encoded.clear()

    contexts = [{"text": p} for p in PASSAGES]
    reranked = await ai.run(RERANKER_MODEL, {"query": QUESTION, "contexts": contexts})
    assert encoder.encoded == [QUESTION]  # only the query was new to the model

    # Same scores as a reranker that embeds everything itself.
    fresh = await EmulatedAI(encoder=MiniLMEncoder()).run(
        RERANKER_MODEL, {"query": QUESTION, "contexts": contexts}
    )
    assert [r["id"] for r in reranked["response"]] == [r["id"] for r in fresh["response"]]
    for mine, theirs in zip(reranked["response"], fresh["response"], strict=True):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-5)
    assert reranked["response"][0]["id"] in (0, 1)  # a glacier passage wins, not the desert

    # A restarted emulator (same data directory) still has the vectors on disk.
    encoder.encoded.clear()
    again = EmulatedAI(encoder=encoder, embedding_cache=tmp_path / "embeddings.sqlite")
    await again.run(RERANKER_MODEL, {"query": QUESTION, "contexts": contexts})
    assert encoder.encoded == []


async def test_reranked_search_after_ingest_embeds_no_passage(
    encoder: CountingEncoder, tmp_path: Path
) -> None:
    mesh = build_mesh(
        tmp_path / "edgerag", operator_token=OPERATOR_TOKEN, ai=EmulatedAI(encoder=encoder)
    )
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "rerank-reuse")
        await ingest(client, auth, "Ice", "\n\n".join(PASSAGES))
        encoder.encoded.clear()
        response = await client.post(
            "/v1/search", json={"query": QUESTION, "top_k": 3, "rerank": True}, headers=auth
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["reranker"] == RERANKER_MODEL
        assert body["results"] and all(h["rerank_score"] is not None for h in body["results"])
        passages = {h["text"] for h in body["results"]}
        assert not passages & set(encoder.encoded)  # no passage went through the model again
        assert encoder.encoded == [QUESTION]  # the query, embedded once for dense retrieval
    await mesh.drain()
