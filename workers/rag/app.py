"""RAG Worker routes (called by the gateway over a service binding only)."""

from __future__ import annotations

import json
from typing import Any

from kernel.bindings.env import Bindings, resolve
from kernel.bindings.health import add_internal_routes
from kernel.bindings.inference import EMBEDDING_MODEL, embed
from kernel.bindings.services import (
    PRINCIPAL_HEADER,
    ROLE_HEADER,
    STUDENTS_HEADER,
    TEACHERS_HEADER,
)
from kernel.contracts.api import SearchHit
from kernel.contracts.rag import (
    USAGE_HEADER,
    AnswerRequest,
    AnswerResponse,
    CacheCleared,
    ChatAnswer,
    ChatMessageRequest,
    CreateSession,
    EvalReport,
    EvalRequest,
    Mode,
    SearchRequest,
    SearchResponse,
    SessionCreated,
    SessionDeleted,
    SessionDetail,
    SessionList,
    ToolStep,
)
from kernel.contracts.tools import AuditPage, ToolCallReply, UserContextBody
from kernel.domain.paging import only_params
from kernel.domain.tenancy import TenantDB, scope_from_request, tenant_db
from kernel.runtime import sse
from kernel.runtime.app import WorkerApp
from kernel.runtime.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.router import Router
from rag import agent, chat, usercontext
from rag.answer import answer, as_sources
from rag.cache import Caches
from rag.evaluation import evaluate_golden_set
from rag.live import open_live
from rag.search import Embedder, hybrid_search
from rag.tools import IMPLS, audit
from rag.tools.dispatch import Caller, Toolbox


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

    async def evaluate(self, request: Request) -> Response:
        """`POST /v1/eval`: the tenant's golden set through the same search, scored per mode.

        Query embeddings are cached, so the three modes embed each question once."""
        scope = scope_from_request(request)
        golden = request.model(EvalRequest)
        embed_query = self._embedder(
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
        ask = request.model(AnswerRequest)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        caches = Caches(self.b.kv, db, "rag")
        # The reader's level sets the register of the answer: part of what it is cached on.
        level = await usercontext.level_of(db, scope.viewer)
        parts = [await caches.corpus_version(), ask.model_dump(), level]
        cached = await caches.get("answer", parts)
        if cached is not None:
            return _spent(json_response({**cached, "cached": True}), 0)
        result: AnswerResponse = await answer(
            self.b, scope, ask, self._embedder(caches), request.request_id
        )
        body = result.model_dump()
        await caches.put("answer", parts, body)
        return _spent(json_response(body), result.usage.get("total_tokens", 0))

    async def clear_cache(self, request: Request) -> Response:
        scope = scope_from_request(request)
        caches = Caches(self.b.kv, TenantDB(self.b.need(self.b.db, "DB"), scope), "rag")
        return json_response(CacheCleared(removed=await caches.clear_results()).model_dump())

    # --- tools, audit, user context -----------------------------------------------------------
    def toolbox(self, db: TenantDB) -> Toolbox:
        raw = self.b.var("EDGERAG_TOOL_TIMEOUT_S")
        cap = float(raw) if raw else None
        return Toolbox(self.b, self._embedder(Caches(self.b.kv, db, "rag")), IMPLS, cap)

    def tool_caller(self, request: Request, **options: Any) -> Caller:
        identity = {
            h: v
            for h in (PRINCIPAL_HEADER, ROLE_HEADER, TEACHERS_HEADER, STUDENTS_HEADER)
            if (v := request.header(h))
        }
        return Caller(scope_from_request(request), request.request_id, identity, **options)

    async def list_tools(self, request: Request) -> Response:
        only_params(request.query)
        caller = self.tool_caller(request)
        tools = self.toolbox(tenant_db(self.b, request)).allowed(caller)
        return json_response({"tools": [t.declaration() for t in tools]})

    async def call_tool(self, request: Request) -> Response:
        caller = self.tool_caller(request)
        box = self.toolbox(TenantDB(self.b.need(self.b.db, "DB"), caller.scope))
        args = request.json() if request.body else {}
        done = await box.call(request.params["name"], args, caller)
        reply = ToolCallReply(
            tool=done.tool, result=done.result, audit_id=done.audit_id, latency_ms=done.latency_ms
        )
        return _spent(json_response(reply.model_dump()), caller.spent)

    async def list_audit(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        if db.scope.viewer is None or db.scope.viewer.role != "admin":
            raise Forbidden("reading the audit log needs the admin role")
        query = audit.parse_query(request.query)
        rows = (await db.run(audit.select_page(db, query))).rows
        return json_response(AuditPage.model_validate(audit.page(rows, query.limit)).model_dump())

    async def get_my_context(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        return json_response((await usercontext.read(db, db.scope.viewer)).model_dump())

    async def put_my_context(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        body = request.model(UserContextBody, max_bytes=usercontext.MAX_CONTEXT_BYTES * 2)
        return json_response((await usercontext.write(db, db.scope.viewer, body)).model_dump())

    async def get_user_context(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        user_id = request.params["user_id"]
        return json_response((await usercontext.read(db, db.scope.viewer, user_id)).model_dump())

    # --- chat --------------------------------------------------------------------------------
    def _owner(self, request: Request) -> str:
        owner = request.header(PRINCIPAL_HEADER)
        if not owner:
            raise BadRequest("chat needs an authenticated principal")
        return owner

    async def _session(self, db: TenantDB, request: Request) -> dict[str, Any]:
        rows = (
            await db.run(
                chat.select_session(db, request.params["session_id"], self._owner(request))
            )
        ).rows
        if not rows:
            raise NotFound(f"chat session {request.params['session_id']} not found")
        return chat.decode_session(rows[0])

    async def create_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        body = request.model(CreateSession) if request.body else CreateSession()
        if body.write_tools and not body.tools:
            raise ValidationFailed(
                "write_tools: needs tools=true",
                details={"fields": [{"field": "write_tools", "message": "needs tools=true"}]},
            )
        session_id = chat.new_session_id()
        owner = self._owner(request)
        await db.run(
            chat.insert_session(db, session_id, owner, body.title, body.tools, body.write_tools)
        )
        created = SessionCreated(
            session_id=session_id, title=body.title, tools=body.tools, write_tools=body.write_tools
        )
        return json_response(created.model_dump(), 201)

    async def list_sessions(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        rows = (await db.run(chat.select_sessions(db, self._owner(request)))).rows
        sessions = [chat.decode_session(r) for r in rows]
        return json_response(SessionList.model_validate({"sessions": sessions}).model_dump())

    async def get_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        session = await self._session(db, request)
        rows = (await db.run(chat.select_messages(db, session["id"]))).rows
        messages = [chat.decode_message(r) for r in reversed(rows)]
        detail = SessionDetail.model_validate({**session, "messages": messages})
        return json_response(detail.model_dump())

    async def delete_session(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        session = await self._session(db, request)
        await db.batch(chat.delete_session(db, session["id"], self._owner(request)))
        return json_response(SessionDeleted(session_id=session["id"], deleted=True).model_dump())

    async def post_message(self, request: Request) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        session = await self._session(db, request)
        message = request.model(ChatMessageRequest)
        history = [
            chat.decode_message(r)
            for r in reversed(
                (await db.run(chat.select_messages(db, session["id"], chat.HISTORY_TURNS))).rows
            )
        ]
        retrieval_query = chat.rewrite_follow_up(message.content, history)
        await db.run(chat.insert_message(db, session["id"], "user", message.content, "complete"))
        caches = Caches(self.b.kv, db, "rag")
        ask = chat.answer_request(message, retrieval_query)
        meta = {"retrieval_query": retrieval_query}
        if session["tools"]:
            return await self._agentic(request, db, session, message, history, ask, meta)
        if message.stream:  # tokens as the model writes them; usage as `usage` events
            items = await open_live(self.b, scope, ask, self._embedder(caches), request.request_id)
            return Response(
                status=200,
                headers=dict(sse.HEADERS),
                stream=chat.stream_answer(db, session["id"], items, meta),
            )
        result = await answer(self.b, scope, ask, self._embedder(caches), request.request_id)
        return await self._store_reply(db, session["id"], result, meta, retrieval_query)

    async def _agentic(
        self,
        request: Request,
        db: TenantDB,
        session: dict[str, Any],
        message: ChatMessageRequest,
        history: list[dict[str, Any]],
        ask: AnswerRequest,
        meta: dict[str, Any],
    ) -> Response:
        """A chat turn where the model may call the caller's tools first (rag.agent)."""
        caller = self.tool_caller(
            request,
            model_requested=True,
            session_id=session["id"],
            allow_writes=session["write_tools"],
        )
        box = self.toolbox(db)
        steps = agent.max_steps(self.b.var("EDGERAG_AGENT_MAX_STEPS"))
        turn = agent.run_turn(box, caller, message.content, history, steps)
        embed, scope, rid = box.embed, db.scope, request.request_id
        if message.stream:

            async def open_answer(evidence: list[SearchHit] | None) -> Any:
                return await open_live(self.b, scope, ask, embed, rid, evidence)

            items = agent.streamed(turn, open_answer)
            return Response(
                status=200,
                headers=dict(sse.HEADERS),
                stream=chat.stream_answer(db, session["id"], items, meta),
            )
        done = await agent.finished(turn)
        evidence = as_sources(done.evidence) if done.evidence else None
        result = await answer(self.b, scope, ask, embed, rid, evidence)
        meta = {**meta, "tool_calls": [s.model_dump() for s in done.steps]}
        return await self._store_reply(
            db, session["id"], result, meta, ask.query, done.steps, done.limited, done.spent
        )

    async def _store_reply(
        self,
        db: TenantDB,
        session_id: str,
        result: AnswerResponse,
        meta: dict[str, Any],
        retrieval_query: str,
        steps: list[ToolStep] | None = None,
        limited: bool = False,
        agent_spent: int = 0,
    ) -> Response:
        spent = result.usage.get("total_tokens", 0) + agent_spent
        citations = [c.model_dump() for c in result.citations]
        await db.batch(
            [
                chat.insert_message(
                    db,
                    session_id,
                    "assistant",
                    result.answer,
                    "complete",
                    json.dumps(citations),
                    json.dumps(
                        {
                            **meta,
                            "confidence": result.confidence,
                            "abstained": result.abstained,
                            "usage": result.usage,
                        }
                    ),
                ),
                chat.touch_session(db, session_id),
            ]
        )
        reply = ChatAnswer(
            **result.model_dump(),
            session_id=session_id,
            retrieval_query=retrieval_query,
            tool_calls=steps or [],
            step_limit_reached=limited,
        )
        return _spent(json_response(reply.model_dump()), spent)


def _spent(response: Response, tokens: int) -> Response:
    """What this request cost in model tokens, for the gateway's budget (USAGE_HEADER)."""
    response.headers[USAGE_HEADER] = str(int(tokens))
    return response


def build_app(raw_env: Any) -> WorkerApp:
    rag = Rag(bindings := resolve("rag", raw_env, {"LLM": "llm", "INGEST": "ingest"}))
    router = Router()
    router.add("POST", "/search", rag.search)
    router.add("POST", "/answer", rag.answer)
    router.add("POST", "/eval", rag.evaluate)
    router.add("POST", "/internal/cache/clear", rag.clear_cache)
    router.add("POST", "/chat/sessions", rag.create_session)
    router.add("GET", "/chat/sessions", rag.list_sessions)
    router.add("GET", "/chat/sessions/{session_id}", rag.get_session)
    router.add("DELETE", "/chat/sessions/{session_id}", rag.delete_session)
    router.add("POST", "/chat/sessions/{session_id}/messages", rag.post_message)
    router.add("GET", "/tools", rag.list_tools)
    router.add("POST", "/tools/{name}", rag.call_tool)
    router.add("GET", "/audit", rag.list_audit)
    router.add("GET", "/me/context", rag.get_my_context)
    router.add("PUT", "/me/context", rag.put_my_context)
    router.add("GET", "/users/{user_id}/context", rag.get_user_context)
    add_internal_routes(router, bindings)
    return WorkerApp("rag", router)
