"""The dispatcher: every tool call — a client's `POST /v1/tools/{name}` or a model's in agentic
chat — goes through `Toolbox.call`, which

  finds the tool (404 `unknown_tool`) → checks the caller's role and, in chat, whether write
  tools were enabled for the session (403) → validates the arguments against the tool's model
  (422 naming the field) → runs it as the caller, within its timeout (504 `tool_timeout`) →
  writes one audit row whatever happened (arguments hashed, never stored) — all inside one
  GenAI `execute_tool` span (kernel.runtime.tracing).

Tools act with the caller's identity only: the viewer the gateway stamped, never anything a
model or a document says, so a student's chat cannot run a teacher's tool and retrieved text
cannot widen what a call may read.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from kernel.bindings.env import Bindings
from kernel.contracts.api import SearchHit
from kernel.contracts.tools import TOOLS, ToolSpec
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.runtime import tracing
from kernel.runtime.errors import ApiError, Forbidden, NotFound, TimedOut
from kernel.runtime.http import validate
from kernel.runtime.ids import new_id
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry
from rag.search import Embedder
from rag.tools import audit

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass
class Caller:
    """Who a tool runs for, and what it may do: built from the gateway's identity headers."""

    scope: TenantScope
    request_id: str
    identity: dict[str, str]  # the identity headers, passed on to the ingest Worker
    model_requested: bool = False
    session_id: str | None = None
    allow_writes: bool = True  # chat sessions: only when created with write tools enabled
    spent: int = field(default=0)  # model tokens the calls spent (the gateway's budget)
    # What search_knowledge_base found for this caller: agentic chat grounds its answer on it.
    evidence: list[SearchHit] = field(default_factory=list)

    @property
    def principal(self) -> str:
        return self.scope.viewer.principal_id if self.scope.viewer else ""

    @property
    def role(self) -> str:
        return self.scope.viewer.role if self.scope.viewer else ""


Impl = Callable[["Toolbox", Any, Caller], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Outcome:
    tool: str
    result: dict[str, Any]
    audit_id: str
    latency_ms: float


class Toolbox:
    def __init__(
        self,
        b: Bindings,
        embedder: Embedder,
        impls: dict[str, Impl],
        timeout_cap_s: float | None,
        specs: Mapping[str, ToolSpec] = TOOLS,  # the MCP server's names (kernel.contracts.mcp)
    ) -> None:
        self.b, self.embed, self.impls, self.specs = b, embedder, impls, specs
        self.timeout_cap_s = timeout_cap_s  # EDGERAG_TOOL_TIMEOUT_S: lowers every tool's

    def db(self, caller: Caller) -> TenantDB:
        return TenantDB(self.b.need(self.b.db, "DB"), caller.scope)

    def allowed(self, caller: Caller) -> list[ToolSpec]:
        return [
            t
            for t in self.specs.values()
            if caller.role in t.roles and (caller.allow_writes or not t.writes)
        ]

    def timeout(self, spec: ToolSpec) -> float:
        cap = self.timeout_cap_s
        return spec.timeout_s if cap is None else min(cap, spec.timeout_s)

    async def call(self, name: str, args: Any, caller: Caller) -> Outcome:
        tool = name if _NAME.match(name) else "?"
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "edgerag.tool.requested_by": "model" if caller.model_requested else "client",
        }
        # A GenAI execute_tool span; arguments only for a tenant that opted in to content.
        with tracing.span(f"execute_tool {tool}", tracing.INTERNAL, attributes) as span:
            if tracing.content_allowed():
                span.set("gen_ai.tool.call.arguments", json.dumps(args, default=str))
            try:
                return await self._call(name, args, caller)
            except ApiError as exc:
                span.fail(exc.code)
                raise

    async def _call(self, name: str, args: Any, caller: Caller) -> Outcome:
        started = time.perf_counter()
        audit_id = new_id("aud")
        error: ApiError | None = None
        result: dict[str, Any] = {}
        try:
            result = await self._run(name, args, caller)
        except ApiError as exc:
            error = exc
        latency = (time.perf_counter() - started) * 1000
        entry = audit.Entry(
            id=audit_id,
            user_id=caller.principal or "?",
            role=caller.role or "?",
            tool=name if _NAME.match(name) else "?",
            args_sha256=audit.args_hash(args),
            outcome="ok" if error is None else "error",
            error_code=None if error is None else error.code,
            latency_ms=latency,
            request_id=caller.request_id,
            model_requested=caller.model_requested,
            session_id=caller.session_id,
        )
        await self.db(caller).run(audit.insert(self.db(caller), entry))
        registry("rag").inc(
            "edgerag_tool_calls_total",
            help="Tool calls by tool, outcome and who asked (client or model)",
            tool=entry.tool,
            outcome=entry.error_code or "ok",
            requested_by="model" if caller.model_requested else "client",
        )
        if error is not None:
            raise error
        return Outcome(name, result, audit_id, round(latency, 3))

    async def _run(self, name: str, args: Any, caller: Caller) -> dict[str, Any]:
        spec = self.specs.get(name)
        if spec is None or name not in self.impls:
            raise NotFound(f"unknown tool {name[:40]!r}", code="unknown_tool")
        if caller.role not in spec.roles:
            raise Forbidden(
                f"the tool {name} needs one of the roles: {', '.join(sorted(spec.roles))}",
                code="tool_forbidden",
            )
        if spec.writes and not caller.allow_writes:
            raise Forbidden(
                f"the tool {name} writes, and write tools are not enabled in this chat session",
                code="tool_not_enabled",
            )
        parsed = validate(spec.args, args if args is not None else {})
        try:
            reply = await asyncio.wait_for(
                self.impls[name](self, parsed, caller), self.timeout(spec)
            )
        except TimeoutError:
            log(
                "tool_timeout", tool=name, tenant=caller.scope.tenant_id, limit_s=self.timeout(spec)
            )
            raise TimedOut(
                f"the tool {name} did not finish within {self.timeout(spec):g} s",
                code="tool_timeout",
            ) from None
        return spec.result.model_validate(reply.model_dump()).model_dump()
