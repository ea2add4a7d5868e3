"""The local Workers AI binding: `EmulatedAI` implements `kernel.bindings.ports.AI` with local models.

Served models (see `describe()`); all are named stand-ins, none pretends to be the real one:
  @cf/baai/bge-small-en-v1.5   all-MiniLM-L6-v2 in numpy (same width, 384; other vectors)
  @cf/baai/bge-reranker-base   BM25 + MiniLM cosine blend (`emulator.ai.reranker`)
  @cf/...instruct              extractive citation composer (`emulator.ai.generator`)

Limits as on Cloudflare: <= 100 texts per embedding call; texts over 512 tokens are truncated
as Workers AI does, unless the call passes `"truncate_inputs": false`, which makes them a
`BindingLimitError` (useful to prove a chunker never produces oversize chunks).

Every vector the binding computes is remembered (`emulator.ai.vector_cache`): the stand-in
reranker gets the passages' vectors from ingest and the query's from the search's own embedding
call, so a reranked search runs no forward pass for text the model has already seen.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emulator.ai import feedback, generator, reranker, tasks
from emulator.ai.embeddings import (
    DIMENSIONS,
    F32,
    MAX_WORDPIECES,
    MiniLMEncoder,
    Pooling,
    shared_encoder,
)
from emulator.ai.vector_cache import VectorCache
from kernel.bindings.ports import (
    AI_MAX_EMBED_BATCH,
    AI_MAX_TOKENS_PER_TEXT,
    BindingError,
    BindingLimitError,
)

__all__ = ["EMBEDDING_MODEL", "GENERATION_MODEL", "RERANKER_MODEL", "EmulatedAI"]

EMBEDDING_MODEL = "@cf/baai/bge-small-en-v1.5"
RERANKER_MODEL = "@cf/baai/bge-reranker-base"
GENERATION_MODEL = "@cf/meta/llama-3.1-8b-instruct"
DEFAULT_MAX_TOKENS = 256  # Workers AI's default for text generation


def _json_mode(model: str, response_format: Any) -> str | None:
    """Workers AI JSON mode: `{"type": "json_object" | "json_schema", "json_schema": {...}}`.
    The stand-ins fill the grounded-claims schema (an object with a `claims` array) and the
    task schemas they stand in for (`extract_entities`, `suggest_tags`: emulator.ai.tasks);
    returns which, or None without JSON mode."""
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping) or response_format.get("type") not in (
        "json_object",
        "json_schema",
    ):
        raise BindingError(
            f"AI.run({model}): response_format.type must be 'json_object' or 'json_schema'"
        )
    schema = response_format.get("json_schema")
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    title = schema.get("title") if isinstance(schema, Mapping) else None
    if isinstance(properties, Mapping) and title in TASK_SCHEMAS:
        return str(title)
    if not isinstance(properties, Mapping) or "claims" not in properties:
        raise BindingError(
            f"AI.run({model}): the stand-in composer answers JSON mode only for the grounded"
            " claims schema (an object with a `claims` array) and the extract_entities and"
            " suggest_tags schemas; a real model fills any schema"
        )
    return "claims"


TASK_SCHEMAS = (
    "extract_entities",
    "suggest_tags",
    "personalize_section",
    "translate_blocks",
    "performance_feedback",
)
TRANSLATION_MODEL = "@cf/meta/m2m100-1.2b"


def _is_generation_model(model: str) -> bool:
    return model.startswith("@cf/") and "instruct" in model


class EmulatedAI:
    """`kernel.bindings.ports.AI` on local models. The encoder is shared per process (weights load once,
    lazily, thread-safe); pass `encoder` to inject another one (tests). `embedding_cache` is a
    SQLite file that keeps computed vectors across restarts (the dev server's data directory);
    without it they are remembered in memory only."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        encoder: MiniLMEncoder | None = None,
        embedding_cache: Path | None = None,
    ) -> None:
        self._model_dir = model_dir
        self._encoder = encoder
        self._cache_path = embedding_cache
        self._cache: VectorCache | None = None

    @property
    def encoder(self) -> MiniLMEncoder:
        if self._encoder is None:
            self._encoder = shared_encoder(self._model_dir)
        return self._encoder

    @property
    def vectors(self) -> VectorCache:
        if self._cache is None:
            weights = self.encoder.model_dir / "model.safetensors"
            size = weights.stat().st_size if weights.exists() else 0
            fingerprint = f"{EMBEDDING_MODEL}|all-MiniLM-L6-v2|{weights.resolve()}|{size}"
            self._cache = VectorCache(fingerprint, self._cache_path)
        return self._cache

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def embed_texts(self, texts: Sequence[str], pooling: Pooling = "mean") -> F32:
        """Vectors for `texts`; only those never embedded before go through the model.
        Blocking (model + SQLite): call it in a worker thread."""
        cache = self.vectors
        keys = [cache.key(pooling, t) for t in texts]
        known = cache.get_many(keys)
        todo = list(dict.fromkeys(t for t, v in zip(texts, known, strict=True) if v is None))
        if todo:
            fresh = self.encoder.encode(todo, pooling=pooling)
            cache.put_many([cache.key(pooling, t) for t in todo], fresh)
            by_text = dict(zip(todo, fresh, strict=True))
            known = [v if v is not None else by_text[t] for t, v in zip(texts, known, strict=True)]
        out = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        for i, v in enumerate(known):
            out[i] = v
        return out

    def describe(self) -> dict[str, Any]:
        return {
            EMBEDDING_MODEL: {
                "served_by": "all-MiniLM-L6-v2 (numpy)",
                "stand_in": True,
                "dimensions": DIMENSIONS,
                "note": "same width as bge-small-en-v1.5, different vector space",
            },
            RERANKER_MODEL: {
                "served_by": reranker.NAME,
                "stand_in": True,
                "note": "reuses the vectors the embedding model computed at ingest",
            },
            TRANSLATION_MODEL: {"served_by": tasks.TRANSLATE_NAME, "stand_in": True},
            "@cf/*instruct": {
                "served_by": generator.NAME,
                "stand_in": True,
                "examples": [GENERATION_MODEL],
                "json_mode": {
                    "claims": generator.NAME,
                    "summarize_sources": tasks.SUMMARY_NAME,
                    "extract_entities": tasks.ENTITIES_NAME,
                    "suggest_tags": tasks.TAGS_NAME,
                    "personalize_section": tasks.PERSONALIZE_NAME,
                    "translate_blocks": tasks.TRANSLATE_NAME,
                    "performance_feedback": feedback.NAME,
                },
                "function_calling": tasks.TOOLS_NAME,
            },
        }

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(model, str):
            raise BindingError(f"AI.run: model must be a string, got {type(model).__name__}")
        if not isinstance(inputs, Mapping):
            raise BindingError(f"AI.run({model}): inputs must be an object")
        if model == EMBEDDING_MODEL:
            return await self._embed(model, inputs)
        if model == RERANKER_MODEL:
            return await self._rerank(model, inputs)
        if _is_generation_model(model):
            return await self._generate(model, inputs)
        if model == TRANSLATION_MODEL:
            return self._translate(model, inputs)
        raise BindingError(f"AI.run: no such model {model!r} in the emulator")

    def _translate(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """m2m100's contract: {text, source_lang?, target_lang} -> {translated_text}."""
        text, target = inputs.get("text"), inputs.get("target_lang")
        if not isinstance(text, str) or not text or not isinstance(target, str) or not target:
            raise BindingError(
                f"AI.run({model}): 'text' and 'target_lang' must be non-empty strings"
            )
        return {"translated_text": tasks.pseudo_translate(text, target)}

    # --- embeddings ----------------------------------------------------------------------
    async def _embed(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        text = inputs.get("text")
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise BindingError(f"AI.run({model}): 'text' must be a string or a list of strings")
        if not texts:
            raise BindingError(f"AI.run({model}): 'text' must not be empty")
        if len(texts) > AI_MAX_EMBED_BATCH:
            raise BindingLimitError(
                f"AI.run({model}): {len(texts)} texts in one call; the limit is "
                f"{AI_MAX_EMBED_BATCH}"
            )
        pooling = inputs.get("pooling", "mean")
        if pooling not in ("mean", "cls"):
            raise BindingError(f"AI.run({model}): 'pooling' must be 'mean' or 'cls'")
        truncate = inputs.get("truncate_inputs", True)
        if not isinstance(truncate, bool):
            raise BindingError(f"AI.run({model}): 'truncate_inputs' must be a boolean")
        enc = self.encoder
        if not truncate:
            counts = await asyncio.to_thread(enc.count_tokens_batch, texts)
            too_long = [i for i, n in enumerate(counts) if n > MAX_WORDPIECES]
            if too_long:
                raise BindingLimitError(
                    f"AI.run({model}): text {too_long[0]} has {counts[too_long[0]] + 2} tokens; "
                    f"the limit is {AI_MAX_TOKENS_PER_TEXT}"
                )
        vecs = await asyncio.to_thread(self.embed_texts, texts, pooling)
        return {"shape": [len(texts), DIMENSIONS], "data": vecs.tolist(), "pooling": pooling}

    # --- reranker ------------------------------------------------------------------------
    async def _rerank(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        query = inputs.get("query")
        if not isinstance(query, str) or not query:
            raise BindingError(f"AI.run({model}): 'query' must be a non-empty string")
        contexts = inputs.get("contexts")
        if not isinstance(contexts, list) or not all(
            isinstance(c, Mapping) and isinstance(c.get("text"), str) for c in contexts
        ):
            raise BindingError(f"AI.run({model}): 'contexts' must be a list of {{'text': str}}")
        top_k = inputs.get("top_k", len(contexts))
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise BindingError(f"AI.run({model}): 'top_k' must be a positive integer")
        passages = [str(c["text"]) for c in contexts]
        scores = await asyncio.to_thread(reranker.rerank_scores, self.embed_texts, query, passages)
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:top_k]
        return {"response": [{"id": i, "score": scores[i]} for i in ranked]}

    # --- text generation -----------------------------------------------------------------
    async def _generate(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if inputs.get("stream"):
            raise BindingError(f"AI.run({model}): to stream, call AI.stream")
        msgs, max_tokens = self._generation_inputs(model, inputs)
        if inputs.get("tools") is not None:  # traditional function calling
            return await asyncio.to_thread(tasks.call_tools, inputs["tools"], msgs, self.encoder)
        kind = _json_mode(model, inputs.get("response_format"))
        if kind in TASK_SCHEMAS:
            schema = inputs["response_format"]["json_schema"]
            return await asyncio.to_thread(generator.task, kind, schema, msgs, self.encoder)
        return await asyncio.to_thread(
            generator.compose, self.encoder, msgs, max_tokens, claims=kind == "claims"
        )

    async def audio(self, model: str, inputs: Mapping[str, Any]) -> bytes:
        """No speech model ships offline for Workers AI's: locally, speech is Piper (its own
        process, llm.speech's `piper` provider)."""
        raise BindingError(
            f"AI.audio: {model!r} is not served by the emulator; use the piper speech provider"
        )

    async def stream(self, model: str, inputs: Mapping[str, Any]) -> AsyncIterator[bytes]:
        """`run(model, {..., "stream": true})` as Workers AI answers it: server-sent events
        `data: {"response": "<piece>"}`, the last with `usage`, then `data: [DONE]`. The
        composer answers whole; its words are then sent one event each, as a model would."""
        if not isinstance(model, str) or not _is_generation_model(model):
            raise BindingError(f"AI.stream: {model!r} is not a text-generation model")
        if inputs.get("response_format") is not None:  # as Workers AI answers it (AiError 5023)
            raise BindingError(
                f"AI.stream({model}): JSON Schema mode is not supported with stream mode"
            )
        msgs, max_tokens = self._generation_inputs(model, inputs)
        result = await asyncio.to_thread(generator.compose, self.encoder, msgs, max_tokens)

        async def events() -> AsyncIterator[bytes]:
            for piece in re.findall(r"\S+\s*", result["response"]):
                yield b"data: " + json.dumps({"response": piece}).encode() + b"\n\n"
                await asyncio.sleep(0)  # one event per turn of the loop, like a network read
            last = {"response": "", "usage": result["usage"]}
            yield b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n"

        return events()

    def _generation_inputs(
        self, model: str, inputs: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], int]:
        messages = inputs.get("messages")
        prompt = inputs.get("prompt")
        if messages is None and isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, Mapping)
                and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            raise BindingError(
                f"AI.run({model}): 'messages' must be a non-empty list of "
                "{'role': str, 'content': str} (or pass 'prompt': str)"
            )
        max_tokens = inputs.get("max_tokens", DEFAULT_MAX_TOKENS)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BindingError(f"AI.run({model}): 'max_tokens' must be a positive integer")
        return [dict(m) for m in messages], max_tokens
