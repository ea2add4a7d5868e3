"""The one pipeline every gateway route runs, row by row from gateway/routes.py:

  drop internal headers → body limit → authenticate → count the rate limit → authorize
  (roles, token budget) → forward the bytes or run the local handler → charge what the Worker
  reported spending (a header; for a stream, its `usage` events: gateway.metering) → RateLimit-*, CORS and security headers on whatever comes back.

Resource checks (may this caller read or change document d?) are not here: the Worker that
owns the data decides, from the identity the pipeline stamps.
"""

from __future__ import annotations

from gateway import budget, cors, ratelimit
from gateway.access import require_role
from gateway.auth import auth_failure, authenticate, bearer_token, is_operator, require_operator
from gateway.context import MULTIPART_ALLOWANCE, Caller, Gateway, caller
from gateway.forward import forward
from gateway.metering import metered
from gateway.route import UPLOAD, Route
from kernel.bindings.services import INTERNAL_HEADER_PREFIX, TENANT_HEADER
from kernel.runtime.app import WorkerApp
from kernel.runtime.errors import ApiError, Forbidden, PayloadTooLarge
from kernel.runtime.http import Request, Response
from kernel.runtime.router import Handler, Router


class GatewayApp(WorkerApp):
    """The kernel's request pipeline (ids, errors, logs, metrics) around the route table."""

    def __init__(self, gateway: Gateway, routes: tuple[Route, ...]) -> None:
        router = Router(options=self._preflight)
        for row in routes:
            router.add(row.method, row.pattern, self._runner(row))
        super().__init__("gateway", router, gateway.b.tracer)
        self.gateway = gateway
        self.routes = routes

    def _runner(self, row: Route) -> Handler:
        async def run(request: Request) -> Response:
            request.context = Caller(route=row)
            return await self._run_row(row, request)

        return run

    async def handle(self, request: Request) -> Response:
        for name in [h for h in request.headers if h.startswith(INTERNAL_HEADER_PREFIX)]:
            del request.headers[name]  # identity headers are ours to set, never the caller's
        response = await super().handle(request)
        state = request.context if isinstance(request.context, Caller) else None
        if state is not None:
            for name, value in state.rate_headers.items():
                response.headers.setdefault(name, value)
            await self._cors(request, response, state)
        cors.security_headers(response.headers)
        return response

    # --- the pipeline -------------------------------------------------------------------------
    async def _run_row(self, row: Route, request: Request) -> Response:
        gw = self.gateway
        self._limit_body(request, row)
        await self._authenticate(request, row)
        state = caller(request)
        db = gw.tdb(state.principal.tenant_id) if state.principal else None
        held = None
        if db is not None and row.cost(request.params, request.body).spends_tokens:
            held = await budget.require_tokens(db, gw.token_budget, gw.token_reservation)
        streamed = False
        try:
            if row.forwards_to is not None:
                response = await forward(gw, request, row.forwards_to)
            else:
                assert not isinstance(row.to, str)
                response = await row.to(gw, request)
            if db is not None and held is not None and response.stream is not None:
                # Spent as it streams: the reservation follows it and settles when it ends.
                response.stream = metered(
                    db, held, gw.token_reservation, response.stream, row.stream_format
                )
                streamed = True
        finally:
            if db is not None and held is not None and not streamed:  # every outcome, errors too
                await budget.charge(db, held, state.usage_tokens or 0)
        if response.status == 200 and row.after is not None:
            await row.after(gw, request, response)
        # Served from the cache, or refused as a bad request (404, 413, 422): nothing was spent,
        # so the day's few personalizations and translations are not used up.
        refused = 400 <= response.status < 500 and response.status != 429
        if row.refund_cached and db is not None and (state.served_from_cache or refused):
            await ratelimit.refund(db, state.counted)
        return response

    def _limit_body(self, request: Request, row: Route) -> None:
        limit = row.body_limit
        if limit == UPLOAD:
            limit = self.gateway.max_upload + MULTIPART_ALLOWANCE
        declared = request.header("content-length")
        size = max(len(request.body), int(declared) if declared and declared.isdigit() else 0)
        if size > limit:
            raise PayloadTooLarge(f"request body is {size} bytes; the limit is {limit}")

    async def _authenticate(self, request: Request, row: Route) -> None:
        gw, state = self.gateway, caller(request)
        if row.auth == "none":
            return
        if row.auth == "operator":
            require_operator(request, gw.operator_token)
            state.operator = True
            return
        if row.auth == "metrics":
            state.operator = is_operator(request, gw.operator_token)
            if not state.operator and not is_operator(request, gw.metrics_token):
                bearer_token(request)  # 401 `missing` when no token was sent at all
                auth_failure(
                    "metrics_token",
                    f"{row.pattern} needs the operator or the metrics token",
                    request,
                )
            return
        if row.auth == "operator_or_principal" and is_operator(request, gw.operator_token):
            state.operator = True
            return
        principal = await authenticate(request, gw.db, gw.ring)
        state.principal, state.tenant_id = principal, principal.tenant_id
        request.headers[TENANT_HEADER] = principal.tenant_id  # the request log names the tenant
        rate = row.cost(request.params, request.body).rate
        if rate is not None:
            subjects = {"user": principal.id, "tenant": "*"}
            await gw.count(request, gw.tdb(principal.tenant_id), rate, subjects)
        if row.roles is not None:
            require_role(principal, row.roles, row.what or f"{row.method} {row.pattern}")

    # --- OPTIONS and CORS ---------------------------------------------------------------------
    async def _preflight(self, request: Request) -> Response:
        allow = ", ".join(sorted(self.router.methods(request.path) | {"OPTIONS"}))
        origin = request.header("origin")
        if not origin or not request.header("access-control-request-method"):
            return Response(status=204, headers={"allow": allow})
        try:
            normalized = cors.normalize_origin(origin)
        except ValueError:
            normalized = ""
        if not normalized or not await cors.any_tenant_allows(self.gateway.db, normalized):
            raise Forbidden(f"origin {origin[:100]} is not allowed", code="cors_origin_not_allowed")
        return Response(status=204, headers=cors.preflight_headers(origin, allow))

    async def _cors(self, request: Request, response: Response, state: Caller) -> None:
        origin = request.header("origin")
        if not origin or request.method == "OPTIONS" or state.tenant_id is None:
            return
        try:
            normalized = cors.normalize_origin(origin)
            allowed = await cors.tenant_allows(self.gateway.tdb(state.tenant_id), normalized)
        except (ValueError, ApiError):
            return
        if allowed:
            response.headers.update(cors.cors_headers(origin))
