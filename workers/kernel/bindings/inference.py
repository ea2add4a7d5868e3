"""Typed calls to Workers AI models, batched within the binding's limits; each call a GenAI
client span (OpenTelemetry semantic conventions) of provider `cloudflare.workers_ai`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel.bindings.ports import AI, AI_MAX_EMBED_BATCH, BindingError
from kernel.runtime import tracing
from kernel.runtime.errors import UpstreamError

EMBEDDING_MODEL = "@cf/baai/bge-small-en-v1.5"
RERANK_MODEL = "@cf/baai/bge-reranker-base"
GENERATION_MODEL = "@cf/meta/llama-3.1-8b-instruct"
# gen_ai.provider.name has no registered value for Workers AI: a custom one, in the registry's
# `<platform>.<service>` style (aws.bedrock, gcp.vertex_ai).
WORKERS_AI = "cloudflare.workers_ai"


def model_call(operation: str, model: str) -> dict[str, tracing.Attr | None]:
    """The attributes a model call's span starts with (the binding runs exactly that model)."""
    return {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": WORKERS_AI,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
    }


async def _run(ai: AI, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
    try:
        return await ai.run(model, inputs)
    except BindingError as exc:
        raise UpstreamError(f"AI model {model} failed: {exc}") from exc


async def embed(ai: AI, texts: Sequence[str]) -> list[list[float]]:
    with tracing.span(
        f"embeddings {EMBEDDING_MODEL}", tracing.CLIENT, model_call("embeddings", EMBEDDING_MODEL)
    ):
        return await _embed(ai, texts)


async def _embed(ai: AI, texts: Sequence[str]) -> list[list[float]]:
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
    # No registered operation name for reranking: a custom one, as the conventions allow.
    with tracing.span(f"rerank {RERANK_MODEL}", tracing.CLIENT, model_call("rerank", RERANK_MODEL)):
        result = await _run(
            ai, RERANK_MODEL, {"query": query, "contexts": [{"text": p} for p in passages]}
        )
    scores = [0.0] * len(passages)
    for item in result.get("response", []):
        scores[int(item["id"])] = float(item["score"])
    return scores


async def generate(ai: AI, messages: list[dict[str, str]], max_tokens: int = 512) -> dict[str, Any]:
    return await _run(ai, GENERATION_MODEL, {"messages": messages, "max_tokens": max_tokens})
