"""Gateway routes: public surface of the mesh.

Every request: internal `x-edgerag-*` headers from the internet are dropped; the caller is
authenticated (API key, access token or operator); the route's rate-limit windows are counted
(gateway/ratelimit.py); roles and document visibility are checked (gateway/access.py); then the
request is forwarded with the caller's tenant, identity, role and — for students — teachers.
Every response gets the security headers, the caller's RateLimit-* headers and, for an origin
the caller's tenant allows, CORS headers (gateway/cors.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from gateway import apikeys, budget, cors, ratelimit, relationships
from gateway.access import WRITERS, check_document, require_role, viewer_for
from gateway.auth import (
    Principal,
    auth_failure,
    authenticate,
    bearer_token,
    is_operator,
    require_operator,
)
from gateway.jwt import KeyConfigError, KeyRing
from gateway.models import (
    CreateApiKey,
    CreateRelationship,
    Login,
    Refresh,
    RegisterUser,
    TenantPolicy,
    UpdateUser,
)
from gateway.passwords import DEFAULT_ITERATIONS
from gateway.tenants import create_tenant
from gateway.users import Identity, select_user, select_users
from kernel.bindings.env import Bindings, resolve
from kernel.bindings.health import health_report
from kernel.bindings.services import (
    INTERNAL_HEADER_PREFIX,
    PRINCIPAL_HEADER,
    ROLE_HEADER,
    TEACHERS_HEADER,
    TENANT_HEADER,
    call,
    relay,
)
from kernel.contracts.api import AnswerRequest, CreateTenant, SearchRequest
from kernel.domain.paging import only_params
from kernel.domain.tenancy import MissingTenant, TenantDB, TenantScope, Viewer
from kernel.runtime.app import WorkerApp
from kernel.runtime.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
)
from kernel.runtime.http import Request, Response, json_response, text_response
from kernel.runtime.logs import log
from kernel.runtime.metrics import merge_exposition, registry, without_label
from kernel.runtime.router import Handler, Route, Router, _match

SERVICES = {"RAG": "rag", "INGEST": "ingest", "LLM": "llm"}
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
JSON_MAX_BYTES = 1024 * 1024
MULTIPART_ALLOWANCE = 64 * 1024  # form framing and fields around the file
ROUTE_CLASS = {
    ("POST", "/v1/search"): "search",
    ("POST", "/v1/eval"): "search",  # one golden-set run counts as one request of its class
    ("POST", "/v1/answer"): "answer",
    ("POST", "/v1/chat/sessions/{session_id}/messages"): "answer",
    ("POST", "/v1/documents"): "ingest",
    ("PUT", "/v1/documents/{document_id}"): "ingest",
    ("GET", "/v1/documents/{document_id}/status"): "status",  # clients poll it while ingesting
}
UNCOUNTED = {("GET", "/v1/rate-limit/status")}


@dataclass
class Caller:
    """What the gateway learned about one request, for the response headers and logs."""

    principal: Principal | None = None
    viewer: Viewer | None = None
    tenant_id: str | None = None  # for CORS: the authenticated tenant, or login's tenant
    rate_headers: dict[str, str] = field(default_factory=dict)


class Gateway:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings
        self.max_upload = int(bindings.var("EDGERAG_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES)
        self.limits = ratelimit.load_limits(bindings.var("EDGERAG_RATE_LIMITS"))
        self.iterations = int(bindings.var("EDGERAG_PBKDF2_ITERATIONS") or DEFAULT_ITERATIONS)
        self.token_budget = int(
            bindings.var("EDGERAG_DAILY_TOKEN_BUDGET") or budget.DEFAULT_DAILY_TOKENS
        )
        try:
            self.ring: KeyRing | None = KeyRing.from_config(
                bindings.var("EDGERAG_JWT_KEYS"), bindings.var("EDGERAG_JWT_ACTIVE_KID")
            )
        except KeyConfigError as exc:
            log("jwt_keys_unavailable", level="warning", reason=str(exc))
            self.ring = None
        self.callers: dict[int, Caller] = {}
        self.methods: dict[str, set[str]] = {}

    # --- helpers -------------------------------------------------------------------------
    @property
    def db(self) -> Any:
        return self.b.need(self.b.db, "DB")

    def caller(self, request: Request) -> Caller:
        return self.callers.setdefault(id(request), Caller())

    def _limit_body(self, request: Request, limit: int) -> None:
        declared = request.header("content-length")
        size = max(len(request.body), int(declared) if declared and declared.isdigit() else 0)
        if size > limit:
            raise PayloadTooLarge(f"request body is {size} bytes; the limit is {limit}")

    def identity(self) -> Identity:
        if self.ring is None:
            raise ServiceUnavailable("user login is not configured (EDGERAG_JWT_KEYS)")
        return Identity(self.db, self.ring, self.iterations)

    async def _count(
        self, request: Request, db: TenantDB, route_class: str, subjects: dict[str, str]
    ) -> None:
        windows = ratelimit.windows_for(self.limits, route_class, subjects)
        decisions = await ratelimit.hit(db, windows)
        headers = ratelimit.headers(decisions)
        self.caller(request).rate_headers = headers
        refused = next((d for d in decisions if not d.admitted), None)
        if refused is not None:
            registry("gateway").inc(
                "edgerag_rate_limited_total",
                help="Requests refused by a rate limit, by route class and scope",
                route_class=route_class,
                scope=refused.window.scope,
            )
            raise RateLimited(
                f"rate limit for {route_class} requests per {refused.window.scope} reached"
                f" ({refused.window.limit} per {refused.window.seconds} s); retry in"
                f" {refused.reset} s",
                headers=headers,
            )

    async def _principal(self, request: Request) -> Principal:
        """Authenticate, count the route's rate-limit windows, remember the caller."""
        state = self.caller(request)
        if state.principal is not None:
            return state.principal
        principal = await authenticate(request, self.db, self.ring)
        state.principal = principal
        state.tenant_id = principal.tenant_id
        request.headers[TENANT_HEADER] = principal.tenant_id  # the request log names the tenant
        route = self.route_of(request)
        if (request.method, route) not in UNCOUNTED:
            route_class = ROUTE_CLASS.get((request.method, route), "api")
            await self._count(
                request,
                self._tdb(principal.tenant_id),
                route_class,
                {"user": principal.id, "tenant": "*"},
            )
        return principal

    def route_of(self, request: Request) -> str:
        return request.params.get("__route__", "")

    def _tdb(self, tenant_id: str) -> TenantDB:
        return TenantDB(self.db, TenantScope(tenant_id))

    async def _viewer(self, request: Request, principal: Principal) -> Viewer:
        state = self.caller(request)
        if state.viewer is None:
            state.viewer = await viewer_for(self._tdb(principal.tenant_id), principal)
        return state.viewer

    async def _identity_headers(self, request: Request, principal: Principal) -> dict[str, str]:
        viewer = await self._viewer(request, principal)
        headers = {PRINCIPAL_HEADER: principal.id, ROLE_HEADER: principal.role}
        if viewer.teachers:
            headers[TEACHERS_HEADER] = ",".join(viewer.teachers)
        return headers

    async def _forward(
        self,
        service: str,
        method: str,
        path: str,
        request: Request,
        principal: Principal,
        payload: Any = None,
    ) -> Response:
        upstream = await call(
            self.b.service(service),
            method,
            path,
            request_id=request.request_id,
            tenant_id=principal.tenant_id,
            payload=payload,
            extra_headers=await self._identity_headers(request, principal),
        )
        return relay(upstream)

    # --- operational -----------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        async def probe(name: str) -> dict[str, Any]:
            try:
                upstream = await call(
                    self.b.service(name), "GET", "/internal/health", request_id=request.request_id
                )
                report = json.loads(upstream.body)
                return (
                    report
                    if upstream.status == 200
                    else {"worker": SERVICES[name], "status": "error"}
                )
            except Exception as exc:  # health must report, not fail
                return {
                    "worker": SERVICES[name],
                    "status": "unreachable",
                    "error": type(exc).__name__,
                }

        reports = await asyncio.gather(*(probe(name) for name in SERVICES))
        workers = [health_report(self.b), *reports]
        healthy = all(w.get("status") == "ok" for w in workers)
        stand_ins = sorted(
            {
                f"{model}: {info.get('served_by', '?')}"
                for w in workers
                for model, info in (w.get("models") or {}).items()
                if info.get("stand_in")
            }
        )
        body = {
            "status": "ok" if healthy else "degraded",
            "workers": workers,
            "stand_ins": stand_ins,
            "auth": {"access_tokens": self.ring is not None},
        }
        return json_response(body, 200 if healthy else 503)

    async def metrics(self, request: Request) -> Response:
        """Operator token: everything. EDGERAG_METRICS_TOKEN (a scraper's secret): the same
        numbers with the per-tenant label summed away, so it never learns tenant ids or what
        each one uses. Anyone else: 401 — the series name tenants and their traffic."""
        operator = is_operator(request, self.b.var("EDGERAG_OPERATOR_TOKEN"))
        if not operator and not is_operator(request, self.b.var("EDGERAG_METRICS_TOKEN")):
            bearer_token(request)  # 401 `missing` when no token was sent at all
            auth_failure(
                "metrics_token", "/metrics needs the operator or the metrics token", request
            )
        texts = [registry("gateway").render({"worker": "gateway"})]
        for name in SERVICES:
            try:
                upstream = await call(
                    self.b.service(name), "GET", "/internal/metrics", request_id=request.request_id
                )
                if upstream.status == 200:
                    texts.append(upstream.body.decode("utf-8"))
            except Exception:  # a missing worker shows up in /health, not as a broken scrape
                continue
        text = merge_exposition(texts)
        if not operator:
            text = without_label(text, "tenant")
        return text_response(text, content_type="text/plain; version=0.0.4")

    async def preflight(self, request: Request) -> Response:
        route = self.route_of(request)
        allow = ", ".join(sorted(self.methods.get(route, set())))
        origin = request.header("origin")
        if not origin or not request.header("access-control-request-method"):
            return Response(status=204, headers={"allow": allow})
        try:
            normalized = cors.normalize_origin(origin)
        except ValueError:
            normalized = ""
        if not normalized or not await cors.any_tenant_allows(self.db, normalized):
            raise Forbidden(f"origin {origin[:100]} is not allowed", code="cors_origin_not_allowed")
        return Response(status=204, headers=cors.preflight_headers(origin, allow))

    # --- tenants ---------------------------------------------------------------------------
    async def create_tenant(self, request: Request) -> Response:
        require_operator(request, self.b.var("EDGERAG_OPERATOR_TOKEN"))
        body = request.model(CreateTenant, max_bytes=JSON_MAX_BYTES)
        created = await create_tenant(self.db, body.name)
        return json_response(created, 201)

    async def update_tenant(self, request: Request) -> Response:
        """Operator: token budget and CORS. The tenant's own admins: CORS only."""
        tenant_id = request.params["tenant_id"]
        operator = is_operator(request, self.b.var("EDGERAG_OPERATOR_TOKEN"))
        if not operator:
            principal = await self._principal(request)
            if principal.tenant_id != tenant_id:
                raise NotFound(f"tenant {tenant_id} not found")
            require_role(principal, {"admin"}, "changing the tenant's CORS origins")
        body = request.model(TenantPolicy, max_bytes=JSON_MAX_BYTES)
        if body.daily_token_budget is not None and not operator:
            raise Forbidden("only the operator sets token budgets")
        try:
            db = self._tdb(tenant_id)
        except MissingTenant as exc:
            raise NotFound(f"tenant {tenant_id} not found") from exc
        exists = (await self.db.execute("SELECT id FROM tenants WHERE id = ?1", (tenant_id,))).rows
        if not exists:
            raise NotFound(f"tenant {tenant_id} not found")
        statements = []
        if body.cors_origins is not None:
            statements += cors.replace_origins(db, body.cors_origins)
        if body.daily_token_budget is not None:
            statements.append(budget.set_budget(db, body.daily_token_budget))
        if statements:
            await db.batch(statements)
        origins = (
            await db.execute("SELECT origin FROM cors_origins WHERE tenant_id = ?1 ORDER BY origin")
        ).rows
        return json_response(
            {
                "tenant_id": tenant_id,
                "cors_origins": [r["origin"] for r in origins],
                "token_budget": await budget.status(db, self.token_budget),
            }
        )

    # --- identity --------------------------------------------------------------------------
    async def register(self, request: Request) -> Response:
        principal = await self._principal(request)
        require_role(principal, {"admin"}, "registering users")
        body = request.model(RegisterUser, max_bytes=JSON_MAX_BYTES)
        user = await self.identity().register(TenantScope(principal.tenant_id), body)
        return json_response(user, 201)

    async def login(self, request: Request) -> Response:
        body = request.model(Login, max_bytes=JSON_MAX_BYTES)
        self.caller(request).tenant_id = body.tenant_id
        ip = client_ip(request)
        await self._count(
            request,
            self._tdb(ratelimit.GLOBAL_SCOPE),
            "login",
            {
                "ip_email": ratelimit.ip_email_subject(ip, f"{body.tenant_id}/{body.email}"),
                "ip": ip,
            },
        )
        return json_response(await self.identity().login(body))

    async def refresh(self, request: Request) -> Response:
        body = request.model(Refresh, max_bytes=JSON_MAX_BYTES)
        await self._count(
            request, self._tdb(ratelimit.GLOBAL_SCOPE), "refresh", {"ip": client_ip(request)}
        )
        return json_response(await self.identity().refresh(body.refresh_token))

    async def me(self, request: Request) -> Response:
        principal = await self._principal(request)
        body: dict[str, Any] = {
            "id": principal.id,
            "tenant_id": principal.tenant_id,
            "role": principal.role,
            "kind": principal.kind,
        }
        if principal.kind == "user":
            db = self._tdb(principal.tenant_id)
            row = (await db.run(select_user(db, principal.id))).rows[0]
            body.update(email=row["email"], name=row["name"], created_at=row["created_at"])
        return json_response(body)

    async def logout(self, request: Request) -> Response:
        """End the caller's session: its refresh tokens and, at once, its access tokens."""
        principal = await self._principal(request)
        if principal.session is None:
            raise BadRequest(
                "API keys have no session to log out of: revoke the key with"
                " DELETE /v1/api-keys/{id}",
                code="not_a_session",
            )
        scope = TenantScope(principal.tenant_id)
        await self.identity().logout(scope, principal.id, principal.session)
        return json_response({"logged_out": True})

    async def update_user(self, request: Request) -> Response:
        """Admins: `{role?, disabled?}`. Not on themselves, so no admin locks themselves out."""
        principal = await self._principal(request)
        require_role(principal, {"admin"}, "changing users")
        body = request.model(UpdateUser, max_bytes=JSON_MAX_BYTES)
        user_id = request.params["user_id"]
        if user_id == principal.id and (body.disabled or body.role not in (None, "admin")):
            raise Forbidden("admins cannot disable or demote themselves; another admin can")
        user = await self.identity().update(TenantScope(principal.tenant_id), user_id, body)
        return json_response(user)

    async def list_users(self, request: Request) -> Response:
        principal = await self._principal(request)
        only_params(request.query)  # not paginated: a limit or cursor would be ignored
        require_role(principal, WRITERS, "listing users")
        db = self._tdb(principal.tenant_id)
        role = None if principal.role == "admin" else "student"  # teachers look up students
        return json_response({"users": (await db.run(select_users(db, role))).rows})

    # --- API keys and relationships ---------------------------------------------------------
    async def list_api_keys(self, request: Request) -> Response:
        principal = await self._principal(request)
        only_params(request.query)  # not paginated: a limit or cursor would be ignored
        require_role(principal, {"admin"}, "listing API keys")
        return json_response({"api_keys": await apikeys.list_keys(self._tdb(principal.tenant_id))})

    async def create_api_key(self, request: Request) -> Response:
        principal = await self._principal(request)
        require_role(principal, {"admin"}, "creating API keys")
        body = request.model(CreateApiKey, max_bytes=JSON_MAX_BYTES)
        created = await apikeys.create(
            self._tdb(principal.tenant_id), body.role, body.name, principal.id
        )
        return json_response(created, 201)

    async def revoke_api_key(self, request: Request) -> Response:
        principal = await self._principal(request)
        require_role(principal, {"admin"}, "revoking API keys")
        return json_response(
            await apikeys.revoke(self._tdb(principal.tenant_id), request.params["key_id"])
        )

    async def create_relationship(self, request: Request) -> Response:
        principal = await self._principal(request)
        body = request.model(CreateRelationship, max_bytes=JSON_MAX_BYTES)
        created = await relationships.create(self._tdb(principal.tenant_id), principal, body)
        return json_response(created, 201)

    async def list_relationships(self, request: Request) -> Response:
        principal = await self._principal(request)
        only_params(request.query)  # not paginated: a limit or cursor would be ignored
        db = self._tdb(principal.tenant_id)
        rows = (await db.run(relationships.select_for(db, principal))).rows
        return json_response({"relationships": rows})

    async def delete_relationship(self, request: Request) -> Response:
        principal = await self._principal(request)
        return json_response(
            await relationships.delete(
                self._tdb(principal.tenant_id), principal, request.params["relationship_id"]
            )
        )

    async def rate_limit_status(self, request: Request) -> Response:
        principal = await self._principal(request)
        db = self._tdb(principal.tenant_id)
        windows = []
        for route_class in ("search", "answer", "ingest", "api"):
            windows += ratelimit.windows_for(
                self.limits, route_class, {"user": principal.id, "tenant": "*"}
            )
        decisions = await ratelimit.peek(db, windows)
        # The same RateLimit-* headers as every route, for the caller's tightest window.
        self.caller(request).rate_headers = ratelimit.headers(decisions)
        return json_response(
            {
                "windows": [
                    {
                        "route_class": d.window.route_class,
                        "scope": d.window.scope,
                        "limit": d.window.limit,
                        "window_seconds": d.window.seconds,
                        "used": d.hits,
                        "remaining": d.remaining,
                        "reset_seconds": d.reset,
                    }
                    for d in decisions
                ],
                "token_budget": await budget.status(db, self.token_budget),
            }
        )

    # --- documents and search --------------------------------------------------------------
    async def _to(self, service: str, request: Request, method: str, path: str) -> Response:
        """Forward as bytes with the caller's identity: the Worker behind parses and validates."""
        principal = await self._principal(request)
        extra = await self._identity_headers(request, principal)
        key = request.header("idempotency-key")
        if key is not None:
            extra["idempotency-key"] = key
        query = f"?{urlencode(request.query)}" if request.query else ""
        upstream = await call(
            self.b.service(service),
            method,
            path + query,
            request_id=request.request_id,
            tenant_id=principal.tenant_id,
            body=request.body if method in ("POST", "PUT", "PATCH") else None,
            content_type=request.header("content-type"),
            extra_headers=extra,
        )
        return relay(upstream)

    async def _document(self, request: Request, *, write: bool) -> str:
        principal = await self._principal(request)
        document_id = request.params["document_id"]
        await check_document(
            self._tdb(principal.tenant_id),
            principal,
            await self._viewer(request, principal),
            document_id,
            write=write,
        )
        return document_id

    async def create_document(self, request: Request) -> Response:
        self._limit_body(request, self.max_upload + MULTIPART_ALLOWANCE)
        require_role(await self._principal(request), WRITERS, "uploading documents")
        return await self._to("INGEST", request, "POST", "/documents")

    async def replace_document(self, request: Request) -> Response:
        self._limit_body(request, self.max_upload + MULTIPART_ALLOWANCE)
        document_id = await self._document(request, write=True)
        return await self._to("INGEST", request, "PUT", f"/documents/{document_id}")

    async def list_documents(self, request: Request) -> Response:
        return await self._to("INGEST", request, "GET", "/documents")

    async def get_document(self, request: Request) -> Response:
        document_id = await self._document(request, write=False)
        return await self._to("INGEST", request, "GET", f"/documents/{document_id}")

    async def document_status(self, request: Request) -> Response:
        document_id = await self._document(request, write=False)
        return await self._to("INGEST", request, "GET", f"/documents/{document_id}/status")

    async def delete_document(self, request: Request) -> Response:
        document_id = await self._document(request, write=True)
        response = await self._to("INGEST", request, "DELETE", f"/documents/{document_id}")
        if response.status == 200 and request.query.get("purge") in ("true", "1"):
            # Cached searches/answers may quote the purged text: remove them, don't just orphan them.
            principal = await self._principal(request)
            await call(
                self.b.service("RAG"),
                "POST",
                "/internal/cache/clear",
                request_id=request.request_id,
                tenant_id=principal.tenant_id,
                payload={},
            )
        return response

    async def restore_document(self, request: Request) -> Response:
        document_id = await self._document(request, write=True)
        return await self._to("INGEST", request, "POST", f"/documents/{document_id}/restore")

    async def answer(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        ask = request.model(AnswerRequest, max_bytes=JSON_MAX_BYTES)
        db = self._tdb(principal.tenant_id)
        await budget.require_tokens(db, self.token_budget)
        response = await self._forward(
            "RAG", "POST", "/answer", request, principal, ask.model_dump(exclude_none=True)
        )
        await self._charge(db, response)
        return response

    async def _charge(self, db: TenantDB, response: Response) -> None:
        if response.status != 200 or response.stream is not None:
            return
        body = response.json()
        if not body.get("cached"):
            await budget.charge(db, int((body.get("usage") or {}).get("total_tokens", 0)))

    async def chat(self, request: Request) -> Response:
        """All /v1/chat/... routes: the rag Worker owns sessions; bodies are JSON."""
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        asks = request.method == "POST" and request.path.endswith("/messages")
        db = self._tdb(principal.tenant_id)
        if asks:
            await budget.require_tokens(db, self.token_budget)
        response = await self._to("RAG", request, request.method, request.path.removeprefix("/v1"))
        if asks and response.stream is not None:
            response.stream = _charging(response.stream, db)
        elif asks:
            await self._charge(db, response)
        return response

    async def get_settings(self, request: Request) -> Response:
        return await self._to("INGEST", request, "GET", "/settings")

    async def update_settings(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        if principal.role != "admin":
            raise Forbidden("only tenant admins can change settings")
        return await self._to("INGEST", request, "PATCH", "/settings")

    async def evaluate(self, request: Request) -> Response:
        """A tenant's golden set, scored per retriever: admins and teachers (it runs ≤600 searches)."""
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        if principal.role not in ("admin", "teacher"):
            raise Forbidden("only admins and teachers can run evaluations")
        return await self._to("RAG", request, "POST", "/eval")

    async def search(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        query = request.model(SearchRequest, max_bytes=JSON_MAX_BYTES)
        return await self._forward(
            "RAG", "POST", "/search", request, principal, query.model_dump(exclude_none=True)
        )


async def _charging(stream: AsyncIterator[bytes], db: TenantDB) -> AsyncIterator[bytes]:
    """Pass SSE through; charge the `done` event's usage.total_tokens to the tenant's budget."""
    pending = b""
    try:
        async for chunk in stream:
            yield chunk
            pending += chunk
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                if event.startswith(b"event: done\n"):
                    data = event.split(b"data: ", 1)[-1]
                    usage = json.loads(data).get("usage") or {}
                    await budget.charge(db, int(usage.get("total_tokens", 0)))
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def client_ip(request: Request) -> str:
    # Cloudflare sets CF-Connecting-IP and overwrites any client-sent value (so does `make dev`).
    return (request.header("cf-connecting-ip") or "unknown")[:64]


class GatewayApp(WorkerApp):
    """The kernel pipeline plus what only the public edge does to requests and responses."""

    def __init__(self, gateway: Gateway, router: Router) -> None:
        super().__init__("gateway", router)
        self.gateway = gateway

    async def handle(self, request: Request) -> Response:
        for name in [h for h in request.headers if h.startswith(INTERNAL_HEADER_PREFIX)]:
            del request.headers[name]  # identity headers are ours to set, never the caller's
        try:
            response = await super().handle(request)
            if request.method == "HEAD":  # the GET's status and headers, never a body
                response.body, response.stream = b"", None
            state = self.gateway.callers.get(id(request)) or Caller()
            for name, value in state.rate_headers.items():
                response.headers.setdefault(name, value)
            await self._cors(request, response, state)
        finally:
            self.gateway.callers.pop(id(request), None)
        cors.security_headers(response.headers)
        return response

    async def _cors(self, request: Request, response: Response, state: Caller) -> None:
        origin = request.header("origin")
        if not origin or request.method == "OPTIONS" or state.tenant_id is None:
            return
        try:
            normalized = cors.normalize_origin(origin)
            allowed = await cors.tenant_allows(self.gateway._tdb(state.tenant_id), normalized)
        except (ValueError, ApiError):
            return
        if allowed:
            response.headers.update(cors.cors_headers(origin))


class EdgeRouter(Router):
    """OPTIONS on any known path is a CORS preflight (or a plain capability answer); HEAD is
    the GET route answered without a body (RFC 9110 §9.3.2); other methods route as usual, and
    a 405's Allow lists the path's real methods."""

    def __init__(self, preflight: Handler) -> None:
        super().__init__()
        self._preflight = preflight

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        method = method.upper()
        if method == "HEAD":
            return self._head(path)
        if method != "OPTIONS":
            return self._resolve(method, path)
        parts = tuple(s for s in path.split("/") if s)
        for route in self._routes:
            params = _match(route.segments, parts)
            if params is not None:
                preflight = Route("OPTIONS", route.pattern, self._preflight, route.segments)
                return preflight, {**params, "__route__": route.pattern}
        raise NotFound(f"no route for {path}")

    def _resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        try:
            return super().resolve(method, path)
        except MethodNotAllowed as exc:
            allowed = set(exc.headers["allow"].split(", "))
            if "GET" in allowed:
                exc.headers["allow"] = ", ".join(sorted(allowed | {"HEAD"}))
            raise

    def _head(self, path: str) -> tuple[Route, dict[str, str]]:
        try:
            route, params = self._resolve("GET", path)
        except MethodNotAllowed as exc:
            raise MethodNotAllowed(f"HEAD is not allowed on {path}", headers=exc.headers) from exc
        get = route.handler

        async def head(request: Request) -> Response:
            request.method = "GET"  # handlers, rate limits and forwarding see the GET it is
            try:
                return await get(request)
            finally:
                request.method = "HEAD"  # logs and metrics say what was asked

        return Route("HEAD", route.pattern, head, route.segments), params


def build_app(raw_env: Any) -> WorkerApp:
    gateway = Gateway(resolve("gateway", raw_env, SERVICES))
    router = EdgeRouter(gateway.preflight)

    def add(method: str, pattern: str, handler: Any) -> None:
        async def routed(request: Request) -> Response:
            request.params["__route__"] = pattern
            return await handler(request)

        router.add(method, pattern, routed)
        also = {"HEAD"} if method == "GET" else set()
        gateway.methods.setdefault(pattern, set()).update({method, "OPTIONS", *also})

    add("GET", "/health", gateway.health)
    add("GET", "/metrics", gateway.metrics)
    add("POST", "/v1/tenants", gateway.create_tenant)
    add("PATCH", "/v1/tenants/{tenant_id}", gateway.update_tenant)
    add("POST", "/v1/auth/register", gateway.register)
    add("POST", "/v1/auth/login", gateway.login)
    add("POST", "/v1/auth/refresh", gateway.refresh)
    add("GET", "/v1/auth/me", gateway.me)
    add("POST", "/v1/auth/logout", gateway.logout)
    add("GET", "/v1/users", gateway.list_users)
    add("PATCH", "/v1/users/{user_id}", gateway.update_user)
    add("GET", "/v1/api-keys", gateway.list_api_keys)
    add("POST", "/v1/api-keys", gateway.create_api_key)
    add("DELETE", "/v1/api-keys/{key_id}", gateway.revoke_api_key)
    add("GET", "/v1/relationships", gateway.list_relationships)
    add("POST", "/v1/relationships", gateway.create_relationship)
    add("DELETE", "/v1/relationships/{relationship_id}", gateway.delete_relationship)
    add("GET", "/v1/rate-limit/status", gateway.rate_limit_status)
    add("POST", "/v1/documents", gateway.create_document)
    add("GET", "/v1/documents", gateway.list_documents)
    add("GET", "/v1/documents/{document_id}", gateway.get_document)
    add("PUT", "/v1/documents/{document_id}", gateway.replace_document)
    add("DELETE", "/v1/documents/{document_id}", gateway.delete_document)
    add("GET", "/v1/documents/{document_id}/status", gateway.document_status)
    add("POST", "/v1/documents/{document_id}/restore", gateway.restore_document)
    add("GET", "/v1/settings", gateway.get_settings)
    add("PATCH", "/v1/settings", gateway.update_settings)
    add("POST", "/v1/search", gateway.search)
    add("POST", "/v1/answer", gateway.answer)
    add("POST", "/v1/eval", gateway.evaluate)
    add("POST", "/v1/chat/sessions", gateway.chat)
    add("GET", "/v1/chat/sessions", gateway.chat)
    add("GET", "/v1/chat/sessions/{session_id}", gateway.chat)
    add("DELETE", "/v1/chat/sessions/{session_id}", gateway.chat)
    add("POST", "/v1/chat/sessions/{session_id}/messages", gateway.chat)
    return GatewayApp(gateway, router)
