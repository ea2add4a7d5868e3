"""The rag Worker's tool routes: the registry, direct calls, the audit log, user context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.services import (
    PRINCIPAL_HEADER,
    ROLE_HEADER,
    STUDENTS_HEADER,
    TEACHERS_HEADER,
)
from kernel.contracts.tools import TOOLS, AuditPage, ToolCallReply, ToolSpec, UserContextBody
from kernel.domain.paging import only_params
from kernel.domain.tenancy import TenantDB, scope_from_request, tenant_db
from kernel.runtime.errors import Forbidden
from kernel.runtime.http import Request, Response, json_response
from rag import usercontext
from rag.cache import Caches, cached_embedder
from rag.replies import spent
from rag.search import Embedder
from rag.tools import IMPLS, audit
from rag.tools.dispatch import Caller, Impl, Toolbox


class ToolRoutes:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    def _embedder(self, caches: Caches) -> Embedder:
        return cached_embedder(self.b, caches)

    def toolbox(
        self, db: TenantDB, impls: dict[str, Impl] = IMPLS, specs: Mapping[str, ToolSpec] = TOOLS
    ) -> Toolbox:
        """`impls`/`specs`: the MCP server's tool names (rag.mcp.tools) over the same tools."""
        raw = self.b.var("EDGERAG_TOOL_TIMEOUT_S")
        cap = float(raw) if raw else None
        embedder = self._embedder(Caches(self.b.kv, db, "rag"))
        return Toolbox(self.b, embedder, impls, cap, specs)

    def caller(self, request: Request, **options: Any) -> Caller:
        identity = {
            h: v
            for h in (PRINCIPAL_HEADER, ROLE_HEADER, TEACHERS_HEADER, STUDENTS_HEADER)
            if (v := request.header(h))
        }
        return Caller(scope_from_request(request), request.request_id, identity, **options)

    async def list_tools(self, request: Request) -> Response:
        only_params(request.query)
        caller = self.caller(request)
        tools = self.toolbox(tenant_db(self.b, request)).allowed(caller)
        return json_response({"tools": [t.declaration() for t in tools]})

    async def call_tool(self, request: Request) -> Response:
        caller = self.caller(request)
        box = self.toolbox(TenantDB(self.b.need(self.b.db, "DB"), caller.scope))
        args = request.json() if request.body else {}
        done = await box.call(request.params["name"], args, caller)
        reply = ToolCallReply(
            tool=done.tool, result=done.result, audit_id=done.audit_id, latency_ms=done.latency_ms
        )
        return spent(json_response(reply.model_dump()), caller.spent)

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
