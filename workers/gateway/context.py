"""What every gateway handler shares: the configured gateway, and the caller on the request.

`Gateway` is built once per isolate from the bindings (limits, keys, budgets); `Caller` is built
once per request by the pipeline and lives on `request.context`, so nothing request-scoped is
kept on the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import budget, ratelimit, tenant_limits
from gateway.access import viewer_for
from gateway.auth import Principal
from gateway.jwt import KeyConfigError, KeyRing
from gateway.passwords import DEFAULT_ITERATIONS
from gateway.users import Identity
from kernel.bindings.env import Bindings
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from kernel.runtime.errors import RateLimited, ServiceUnavailable
from kernel.runtime.http import Request
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry

if TYPE_CHECKING:
    from gateway.route import Route

SERVICES = {"RAG": "rag", "INGEST": "ingest", "LLM": "llm"}
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
JSON_MAX_BYTES = 1024 * 1024
MULTIPART_ALLOWANCE = 64 * 1024  # form framing and fields around the file


@dataclass
class Caller:
    """What the pipeline learned about one request, for handlers, response headers and logs."""

    route: Route
    principal: Principal | None = None
    operator: bool = False  # the operator token (or, on /metrics, the scraper's token) was sent
    viewer: Viewer | None = None
    tenant_id: str | None = None  # for CORS: the authenticated tenant, or login's tenant
    rate_headers: dict[str, str] = field(default_factory=dict)
    usage_tokens: int | None = None  # what the Worker behind reported spending
    counted: list[ratelimit.Decision] = field(default_factory=list)  # windows this request hit
    served_from_cache: bool = False  # the Worker said so (CACHED_HEADER)


def caller(request: Request) -> Caller:
    state = request.context
    if not isinstance(state, Caller):  # only the pipeline runs handlers, and it sets this
        raise RuntimeError("gateway handler called outside the pipeline")
    return state


def principal(request: Request) -> Principal:
    found = caller(request).principal
    if found is None:
        raise RuntimeError(f"route {caller(request).route.pattern} has no authenticated caller")
    return found


class Gateway:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings
        self.max_upload = int(bindings.var("EDGERAG_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES)
        self.limits = ratelimit.load_limits(bindings.var("EDGERAG_RATE_LIMITS"))
        # What a tenant's admin may raise its own limits to (default: the deployment's).
        ceilings = bindings.var("EDGERAG_RATE_CEILINGS")
        self.ceilings = ratelimit.load_limits(ceilings) if ceilings else self.limits
        self.iterations = int(bindings.var("EDGERAG_PBKDF2_ITERATIONS") or DEFAULT_ITERATIONS)
        self.token_budget = int(
            bindings.var("EDGERAG_DAILY_TOKEN_BUDGET") or budget.DEFAULT_DAILY_TOKENS
        )
        # Set aside per answer while it runs (a grounded answer's prompt + reply, typically).
        self.token_reservation = int(bindings.var("EDGERAG_TOKEN_RESERVATION") or 2000)
        self.operator_token = bindings.var("EDGERAG_OPERATOR_TOKEN")
        self.metrics_token = bindings.var("EDGERAG_METRICS_TOKEN")
        try:
            self.ring: KeyRing | None = KeyRing.from_config(
                bindings.var("EDGERAG_JWT_KEYS"), bindings.var("EDGERAG_JWT_ACTIVE_KID")
            )
        except KeyConfigError as exc:
            log("jwt_keys_unavailable", level="warning", reason=str(exc))
            self.ring = None

    @property
    def db(self) -> Any:
        return self.b.need(self.b.db, "DB")

    def tdb(self, tenant_id: str) -> TenantDB:
        return TenantDB(self.db, TenantScope(tenant_id))

    def identity(self) -> Identity:
        if self.ring is None:
            raise ServiceUnavailable("user login is not configured (EDGERAG_JWT_KEYS)")
        return Identity(self.db, self.ring, self.iterations)

    async def viewer(self, request: Request) -> Viewer:
        state = caller(request)
        if state.viewer is None:
            who = principal(request)
            state.viewer = await viewer_for(self.tdb(who.tenant_id), who)
        return state.viewer

    async def limits_for(self, db: TenantDB) -> ratelimit.Limits:
        """The deployment's limits with the tenant's own counts (none before login)."""
        if db.scope.tenant_id == ratelimit.GLOBAL_SCOPE:
            return self.limits
        return tenant_limits.effective(self.limits, await tenant_limits.overrides(db))

    async def count(
        self, request: Request, db: TenantDB, route_class: str, subjects: dict[str, str]
    ) -> None:
        """Count one hit in each of the class's windows; 429 when one is full."""
        windows = ratelimit.windows_for(await self.limits_for(db), route_class, subjects)
        decisions = await ratelimit.hit(db, windows)
        headers = ratelimit.headers(decisions)
        caller(request).rate_headers = headers
        caller(request).counted = decisions
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


def client_ip(request: Request) -> str:
    # Cloudflare sets CF-Connecting-IP and overwrites any client-sent value (so does `make dev`).
    return (request.header("cf-connecting-ip") or "unknown")[:64]
