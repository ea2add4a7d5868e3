"""RAG Worker routes (called by the gateway over a service binding only)."""

from __future__ import annotations

from typing import Any

from kernel.api import AnswerRequest, AnswerResponse, SearchRequest, SearchResponse
from kernel.app import WorkerApp
from kernel.env import Bindings, resolve
from kernel.http import Request, Response, json_response
from kernel.inference import EMBEDDING_MODEL, embed
from kernel.internal import add_internal_routes
from kernel.router import Router
from kernel.tenancy import TenantDB, scope_from_request
from rag.answer import answer
from rag.cache import Caches
from rag.search import Embedder, hybrid_search


class Rag:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    def _embedder(self, caches: Caches) -> Embedder:
        async def embed_query(text: str) -> list[float]:
            parts = [EMBEDDING_MODEL, text]
            cached = await caches.get("embedding", parts)
            if cached is not None:
                return [float(x) for x in cached]
            [vector] = await embed(self.b.need(self.b.ai, "AI"), [text])
            await caches.put("embedding", parts, vector)
            return vector

        return embed_query

    async def search(self, request: Request) -> Response:
        scope = scope_from_request(request)
        query = request.model(SearchRequest)
        caches = Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        parts = [await caches.corpus_version(), query.model_dump()]
        cached = await caches.get("search", parts)
        if cached is not None:
            return json_response({**cached, "cached": True})
        result: SearchResponse = await hybrid_search(self.b, scope, query, self._embedder(caches))
        body = result.model_dump()
        await caches.put("search", parts, body)
        return json_response(body)

    async def answer(self, request: Request) -> Response:
        scope = scope_from_request(request)
        ask = request.model(AnswerRequest)
        caches = Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        parts = [await caches.corpus_version(), ask.model_dump()]
        cached = await caches.get("answer", parts)
        if cached is not None:
            return json_response({**cached, "cached": True})
        result: AnswerResponse = await answer(
            self.b, scope, ask, self._embedder(caches), request.request_id
        )
        body = result.model_dump()
        await caches.put("answer", parts, body)
        return json_response(body)


def build_app(raw_env: Any) -> WorkerApp:
    rag = Rag(bindings := resolve("rag", raw_env, {"LLM": "llm"}))
    router = Router()
    router.add("POST", "/search", rag.search)
    router.add("POST", "/answer", rag.answer)
    add_internal_routes(router, bindings)
    return WorkerApp("rag", router)
