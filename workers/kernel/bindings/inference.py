"""Typed calls to Workers AI models, batched within the binding's limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel.bindings.ports import AI, AI_MAX_EMBED_BATCH, BindingError
from kernel.runtime.errors import UpstreamError

EMBEDDING_MODEL = "@cf/baai/bge-small-en-v1.5"
RERANK_MODEL = "@cf/baai/bge-reranker-base"
GENERATION_MODEL = "@cf/meta/llama-3.1-8b-instruct"


async def _run(ai: AI, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
    try:
        return await ai.run(model, inputs)
    except BindingError as exc:
        raise UpstreamError(f"AI model {model} failed: {exc}") from exc


async def embed(ai: AI, texts: Sequence[str]) -> list[list[float]]:
    vectors: list[list[float]] = []
    for start in range(0, len(texts), AI_MAX_EMBED_BATCH):
        batch = list(texts[start : start + AI_MAX_EMBED_BATCH])
        result = await _run(ai, EMBEDDING_MODEL, {"text": batch})
        data = result.get("data")
        if not isinstance(data, list) or len(data) != len(batch):
            raise UpstreamError(
                f"AI model {EMBEDDING_MODEL} returned {len(data or [])} vectors for {len(batch)} texts"
            )
        vectors.extend([float(x) for x in row] for row in data)
    return vectors


async def rerank(ai: AI, query: str, passages: Sequence[str]) -> list[float]:
    """Scores aligned with `passages` (higher is more relevant)."""
    if not passages:
        return []
    result = await _run(
        ai, RERANK_MODEL, {"query": query, "contexts": [{"text": p} for p in passages]}
    )
    scores = [0.0] * len(passages)
    for item in result.get("response", []):
        scores[int(item["id"])] = float(item["score"])
    return scores


async def generate(ai: AI, messages: list[dict[str, str]], max_tokens: int = 512) -> dict[str, Any]:
    return await _run(ai, GENERATION_MODEL, {"messages": messages, "max_tokens": max_tokens})
