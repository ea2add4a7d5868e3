"""Spans out of the isolate: OTLP/HTTP JSON, `POST {EDGERAG_OTLP_ENDPOINT}/v1/traces`.

Configured per Worker from its vars: EDGERAG_OTLP_ENDPOINT (unset: tracing off),
EDGERAG_OTLP_HEADERS (a secret: `name=value` pairs, comma-separated, values percent-encoded —
the OTEL_EXPORTER_OTLP_HEADERS format), EDGERAG_TRACE_CONTENT_TENANTS (tenant ids whose spans
may carry request content). The transport is the `Http` port: the runtime's global fetch on
Cloudflare, an `OTLP` object in the emulator's env.

One POST per request, from `wait_until`, within `EXPORT_TIMEOUT_S`. At most `MAX_IN_FLIGHT`
exports per isolate: while a slow collector holds them, further batches are dropped and counted
rather than queued — a collector that is down or slow costs spans, never a reply, never memory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlsplit

from kernel.bindings.ports import Http, HttpError
from kernel.runtime import otlp
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry
from kernel.runtime.tracing import Span, Tracer, count_dropped

EXPORT_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 4
WARN_EVERY_S = 60.0  # a collector that stays down is one log line a minute, not one a request
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP field name (RFC 9110 token)


class OtlpExporter:
    def __init__(self, worker: str, url: str, headers: dict[str, str], http: Http) -> None:
        self.worker, self.url, self.http = worker, url, http
        self.headers = {**headers, "content-type": "application/json"}
        self.in_flight = 0
        self._warned_at = float("-inf")

    async def export(self, service: str, spans: Sequence[Span]) -> None:
        if self.in_flight >= MAX_IN_FLIGHT:
            count_dropped(self.worker, "backlog", len(spans))
            return
        self.in_flight += 1
        status = 0
        try:
            reply = await self.http.send(
                "POST",
                self.url,
                headers=self.headers,
                body=otlp.encode(service, spans),
                timeout_s=EXPORT_TIMEOUT_S,
            )
            status = reply.status
            outcome = "ok" if 200 <= status < 300 else "rejected"
        except HttpError as exc:
            outcome = exc.kind  # timeout | network
        except Exception:  # anything else the transport raises: still never the request's problem
            outcome = "failed"
        finally:
            self.in_flight -= 1
        registry(self.worker).inc(
            "edgerag_trace_exports_total",
            help="OTLP trace exports, by outcome (ok, rejected, timeout, network, failed)",
            outcome=outcome,
        )
        if outcome != "ok":
            count_dropped(self.worker, "export", len(spans))
            self._warn(outcome, status)

    def _warn(self, outcome: str, status: int) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log(
                "trace_export_failed",
                level="warning",
                worker=self.worker,
                outcome=outcome,
                status=status,
            )


def configure(
    worker: str, var: Callable[[str], str | None], transport: Callable[[], Http]
) -> Tracer | None:
    """The Worker's tracer, or None (tracing off) without a usable EDGERAG_OTLP_ENDPOINT. A
    setting that does not parse turns tracing off with a warning, never the Worker."""
    endpoint = (var("EDGERAG_OTLP_ENDPOINT") or "").strip()
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        log(
            "tracing_off",
            level="warning",
            worker=worker,
            reason="EDGERAG_OTLP_ENDPOINT is not an http(s) URL",
        )
        return None
    url = endpoint.rstrip("/") + "/v1/traces"
    headers = parse_headers(var("EDGERAG_OTLP_HEADERS") or "", worker)
    tenants = frozenset(
        t.strip() for t in (var("EDGERAG_TRACE_CONTENT_TENANTS") or "").split(",") if t.strip()
    )
    return Tracer(worker, OtlpExporter(worker, url, headers, transport()), tenants)


def parse_headers(raw: str, worker: str = "") -> dict[str, str]:
    """`name=value,name2=value2` (values percent-decoded); malformed pairs are skipped with a
    warning that names the position, never the value (it is usually a credential)."""
    headers: dict[str, str] = {}
    for index, pair in enumerate(p for p in raw.split(",") if p.strip()):
        name, eq, value = pair.partition("=")
        name, value = name.strip(), unquote(value.strip())
        if not eq or not _TOKEN.match(name) or any(c in value for c in "\r\n\0"):
            log("otlp_header_skipped", level="warning", worker=worker, position=index + 1)
            continue
        headers[name.lower()] = value
    return headers
