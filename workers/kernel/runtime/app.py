"""The request pipeline every Worker shares: request id, routing, error rendering, logs, metrics."""

from __future__ import annotations

import re
import time
import traceback

from kernel.runtime import tracing
from kernel.runtime.errors import ApiError
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.ids import new_request_id
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry
from kernel.runtime.router import Route, Router

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TENANT_HEADER = "x-edgerag-tenant"  # stamped by the gateway after authentication


def request_id_for(request: Request) -> str:
    """Keep a caller's id when it is safe to echo into logs and headers, else mint one."""
    incoming = request.header("x-request-id")
    if incoming and _SAFE_REQUEST_ID.match(incoming):
        return incoming
    return new_request_id()


class WorkerApp:
    def __init__(self, worker: str, router: Router, tracer: tracing.Tracer | None = None) -> None:
        self.worker = worker
        self.router = router
        self.tracer = tracer  # None: tracing is off (no EDGERAG_OTLP_ENDPOINT)

    async def handle(self, request: Request) -> Response:
        request.request_id = request_id_for(request)
        started = time.perf_counter()
        route_label = "unmatched"
        head = request.method == "HEAD"
        server = tracing.begin(self.tracer, request.headers, request.header(TENANT_HEADER))
        with tracing.active(server):
            try:
                route, params = self.router.resolve(request.method, request.path)
                route_label = route.pattern
                request.params = params
                response = await self._run(route, request)
            except ApiError as exc:
                response = json_response(exc.body(request.request_id), exc.status, exc.headers)
            except Exception as exc:  # the one place a surprise becomes a clean 500
                tracing.current().fail(type(exc).__name__)
                log(
                    "unhandled_exception",
                    level="error",
                    worker=self.worker,
                    request_id=request.request_id,
                    error=type(exc).__name__,
                    trace=traceback.format_exc(limit=8),
                )
                body = {
                    "error": {
                        "code": "internal_error",
                        "message": "internal error; quote the request id when reporting it",
                        "request_id": request.request_id,
                    }
                }
                response = json_response(body, 500)
        if head:  # the GET's status and headers, never a body (errors included)
            response.body, response.stream = b"", None
        response.headers["x-request-id"] = request.request_id
        if server is not None:
            _end_server_span(server, request, response, route_label)
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = str(response.status)
        metrics = registry(self.worker)
        metrics.inc(
            "edgerag_requests_total",
            help="Requests handled, by route, method and status",
            route=route_label,
            method=request.method,
            status=status,
        )
        metrics.observe(
            "edgerag_request_duration_ms",
            elapsed_ms,
            help="Request latency in milliseconds",
            route=route_label,
        )
        log(
            "request",
            worker=self.worker,
            request_id=request.request_id,
            tenant=request.header(TENANT_HEADER),
            method=request.method,
            route=route_label,
            status=response.status,
            latency_ms=round(elapsed_ms, 2),
        )
        return response

    async def _run(self, route: Route, request: Request) -> Response:
        if request.method != "HEAD" or route.method == "HEAD":
            return await route.handler(request)
        request.method = "GET"  # handlers, rate limits and forwarding see the GET it is
        try:
            return await route.handler(request)
        finally:
            request.method = "HEAD"  # logs and metrics say what was asked


def _end_server_span(
    server: tracing.Span, request: Request, response: Response, route_label: str
) -> None:
    """HTTP server span attributes (OpenTelemetry HTTP semantic conventions): no path, no
    query — the route pattern only — so nothing a caller typed reaches the collector."""
    matched = route_label != "unmatched"
    server.name = f"{request.method} {route_label}" if matched else request.method
    server.update(
        {
            "http.request.method": request.method,
            "http.route": route_label if matched else None,
            "http.response.status_code": response.status,
            "edgerag.request_id": request.request_id,
            "edgerag.tenant_id": request.header(TENANT_HEADER),
        }
    )
    if response.status >= 500 and "error.type" not in server.attributes:
        server.fail(str(response.status))
    if response.stream is not None:  # ends, and is exported, when the stream does
        response.stream = tracing.until_closed(response.stream, server, request.wait_until)
    else:
        tracing.finish(server, request.wait_until)
