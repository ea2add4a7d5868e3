"""RAG Worker routes (called by the gateway over a service binding only): search, answers and
evaluation here; chat in rag.chat_routes, tools, audit and user context in rag.tool_routes."""

from __future__ import annotations

from typing import Any

from kernel.bindings.env import Bindings, resolve
from kernel.bindings.health import add_internal_routes
from kernel.contracts.rag import (
    AnswerRequest,
    AnswerResponse,
    CacheCleared,
    EvalReport,
    EvalRequest,
    Mode,
    SearchRequest,
    SearchResponse,
)
from kernel.domain.tenancy import TenantDB, TenantScope, scope_from_request
from kernel.runtime.app import WorkerApp
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.router import Router
from rag import progress, usercontext
from rag.ai_sdk import AiSdkRoutes
from rag.answer import answer
from rag.cache import Caches, cached_embedder
from rag.chat_routes import ChatRoutes
from rag.evaluation import evaluate_golden_set
from rag.learning_routes import LearningRoutes
from rag.mcp.transport import McpRoutes
from rag.openai_compat import OpenAIRoutes
from rag.recording_routes import RecordingRoutes
from rag.replies import spent
from rag.search import Embedder, hybrid_search
from rag.tool_routes import ToolRoutes


class Rag:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    def embedder(self, caches: Caches) -> Embedder:
        return cached_embedder(self.b, caches)

    async def search(self, request: Request) -> Response:
        scope = scope_from_request(request)
        query = request.model(SearchRequest)
        caches = Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        parts = [await caches.corpus_version(), query.model_dump()]
        cached = await caches.get("search", parts)
        if cached is not None:
            return json_response({**cached, "cached": True})
        result: SearchResponse = await hybrid_search(self.b, scope, query, self.embedder(caches))
        body = result.model_dump()
        await caches.put("search", parts, body)
        return json_response(body)

    async def evaluate(self, request: Request) -> Response:
        """`POST /v1/eval`: the tenant's golden set through the same search, scored per mode.

        Query embeddings are cached, so the three modes embed each question once."""
        scope = scope_from_request(request)
        golden = request.model(EvalRequest)
        embed_query = self.embedder(
            Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        )

        async def search(question: str, mode: Mode, depth: int) -> list[str]:
            query = SearchRequest(query=question[:2000], top_k=depth, mode=mode, rerank=False)
            result = await hybrid_search(self.b, scope, query, embed_query)
            return [hit.document_id for hit in result.results]

        report = EvalReport.model_validate(await evaluate_golden_set(golden, search))
        return json_response(report.model_dump(exclude_none=True))

    async def answer(self, request: Request) -> Response:
        scope = scope_from_request(request)
        body, tokens = await self.answered(scope, request.model(AnswerRequest), request.request_id)
        return spent(json_response(body), tokens)

    async def answered(
        self, scope: TenantScope, ask: AnswerRequest, request_id: str
    ) -> tuple[dict[str, Any], int]:
        """`/answer`'s reply and the model tokens it spent (0 from the cache); the MCP tool
        `answer` gives the same."""
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        caches = Caches(self.b.kv, db, "rag")
        await progress.asked(db, scope.viewer)  # a question, even when the answer is cached
        # The reader's level sets the register of the answer: part of what it is cached on.
        level = await usercontext.level_of(db, scope.viewer)
        parts = [await caches.corpus_version(), ask.model_dump(), level]
        cached = await caches.get("answer", parts)
        if cached is not None:
            return {**cached, "cached": True}, 0
        result: AnswerResponse = await answer(self.b, scope, ask, self.embedder(caches), request_id)
        body = result.model_dump()
        await caches.put("answer", parts, body)
        return body, result.usage.get("total_tokens", 0)

    async def clear_cache(self, request: Request) -> Response:
        scope = scope_from_request(request)
        caches = Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        return json_response(CacheCleared(removed=await caches.clear_results()).model_dump())


def build_app(raw_env: Any) -> WorkerApp:
    rag = Rag(bindings := resolve("rag", raw_env, {"LLM": "llm", "INGEST": "ingest"}))
    tools = ToolRoutes(bindings)
    chat = ChatRoutes(bindings, tools)
    learning = LearningRoutes(bindings, tools)
    router = Router()
    router.add("POST", "/search", rag.search)
    router.add("POST", "/answer", rag.answer)
    router.add("POST", "/eval", rag.evaluate)
    router.add("POST", "/internal/cache/clear", rag.clear_cache)
    router.add("POST", "/chat/sessions", chat.create_session)
    router.add("GET", "/chat/sessions", chat.list_sessions)
    router.add("GET", "/chat/sessions/{session_id}", chat.get_session)
    router.add("DELETE", "/chat/sessions/{session_id}", chat.delete_session)
    router.add("POST", "/chat/sessions/{session_id}/messages", chat.post_message)
    router.add("GET", "/tools", tools.list_tools)
    router.add("POST", "/tools/{name}", tools.call_tool)
    router.add("GET", "/audit", tools.list_audit)
    router.add("GET", "/me/context", tools.get_my_context)
    router.add("PUT", "/me/context", tools.put_my_context)
    router.add("GET", "/users/{user_id}/context", tools.get_user_context)
    router.add("GET", "/me/progress", learning.get_my_progress)
    router.add("POST", "/me/progress", learning.post_my_progress)
    router.add("GET", "/users/{user_id}/progress", learning.get_user_progress)
    router.add("GET", "/progress/summary", learning.get_summary)
    router.add("POST", "/personalize", learning.personalize)
    router.add("POST", "/translate", learning.translate)
    router.add("POST", "/tts", learning.tts)
    tapes = RecordingRoutes(bindings, tools)
    router.add("POST", "/recordings/{recording_id}/feedback", tapes.feedback)
    router.add("GET", "/recordings/{recording_id}/feedback", tapes.feedback_history)
    # OpenAI-compatible API and AI SDK streams: the chat path without a session.
    openai = OpenAIRoutes(bindings)
    router.add("GET", "/models", openai.list_models)
    router.add("GET", "/models/{model}", openai.get_model)
    router.add("POST", "/chat/completions", openai.chat_completions)
    router.add("POST", "/ai-sdk/chat", AiSdkRoutes(bindings).chat)
    # MCP (Model Context Protocol, Streamable HTTP): rag/mcp/.
    mcp = McpRoutes(bindings, tools, rag.answered)
    router.add("POST", "/mcp", mcp.post)
    router.add("DELETE", "/mcp", mcp.delete)
    add_internal_routes(router, bindings)
    return WorkerApp("rag", router, bindings.tracer)
