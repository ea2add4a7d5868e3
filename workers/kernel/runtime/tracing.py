"""Spans: what one Worker did for one request, joined across Workers by W3C Trace Context.

`WorkerApp` opens a server span per request (a child of the caller's span when the request
carries a valid `traceparent`, else the root of a new trace) and makes it current for the
handler; `span()` opens children of the current span, `kernel.bindings.services.call` sends the
current span as the next Worker's parent. The current span lives in a ContextVar, so tasks
started by the handler (`asyncio.gather`, `wait_for`) inherit it, and each request — each
in-process service call in the emulator, too — sets its own and resets it when done.

Spans are buffered per request (at most `Tracer.max_spans`; more are counted, not kept) and
handed to the exporter once, from `wait_until` after the reply: nothing here waits on a
collector. With no tracer (no endpoint configured) every call below returns at once: one
ContextVar set and reset per request is the whole cost.

Attributes never carry request content (queries, prompts, document text) unless the tenant is
one the operator listed in EDGERAG_TRACE_CONTENT_TENANTS: `content()` checks that.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Protocol

from kernel.runtime import tracecontext as w3c
from kernel.runtime.metrics import registry

# OTLP Span.SpanKind
INTERNAL, SERVER, CLIENT = 1, 2, 3
Attr = str | bool | int | float
MAX_ATTRIBUTES = 48
MAX_VALUE_CHARS = 4096  # longer strings (opted-in content) are cut, never refused

WaitUntil = Callable[[Awaitable[Any]], None]


class Exporter(Protocol):
    async def export(self, service: str, spans: Sequence[Span]) -> None:
        """Send the spans of one request; never raises (a failing collector is counted)."""
        ...


@dataclass(frozen=True)
class Tracer:
    """One per Worker isolate: where its spans go and what they may hold."""

    worker: str
    exporter: Exporter
    content_tenants: frozenset[str] = frozenset()
    max_spans: int = 128

    @property
    def service(self) -> str:
        return f"edgerag-{self.worker}"  # the resource's service.name


class Trace:
    """The spans one Worker records for one request."""

    def __init__(
        self, tracer: Tracer, trace_id: str, flags: int, state: str, tenant_id: str | None
    ) -> None:
        self.tracer, self.trace_id, self.flags, self.state = tracer, trace_id, flags, state
        self.tenant_id = tenant_id
        self.spans: list[Span] = []
        self.dropped = 0
        self.flushed = False

    @property
    def recording(self) -> bool:
        # An unsampled trace (the caller's `sampled` flag is 0) is propagated, never recorded.
        return bool(self.flags & w3c.SAMPLED)

    def record(self, span: Span) -> None:
        if not self.recording:
            return
        if self.flushed:  # background work that outlived the request's export
            count_dropped(self.tracer.worker, "late", 1)
        elif len(self.spans) >= self.tracer.max_spans:
            self.dropped += 1
            count_dropped(self.tracer.worker, "limit", 1)
        else:
            self.spans.append(span)


class Span:
    __slots__ = (
        "_held",
        "attributes",
        "dropped_attributes",
        "end_ns",
        "error",
        "kind",
        "name",
        "parent_id",
        "remote_parent",
        "span_id",
        "start_ns",
        "trace",
    )

    def __init__(
        self,
        trace: Trace | None,
        name: str,
        kind: int,
        parent_id: str,
        *,
        remote_parent: bool = False,
        attributes: Mapping[str, Attr | None] | None = None,
    ) -> None:
        self.trace, self.name, self.kind, self.parent_id = trace, name, kind, parent_id
        self.remote_parent = remote_parent
        self.span_id = w3c.new_span_id() if trace is not None else ""
        self.start_ns = time.time_ns()
        self.end_ns = 0
        self.attributes: dict[str, Attr] = {}
        self.dropped_attributes = 0
        self.error = False
        self._held = False
        if attributes:
            self.update(attributes)

    @property
    def recording(self) -> bool:
        return self.trace is not None and self.trace.recording and not self.end_ns

    def set(self, key: str, value: Attr | None) -> None:
        if value is None or not self.recording:
            return
        if key not in self.attributes and len(self.attributes) >= MAX_ATTRIBUTES:
            self.dropped_attributes += 1
            return
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS]
        self.attributes[key] = value

    def update(self, attributes: Mapping[str, Attr | None]) -> None:
        for key, value in attributes.items():
            self.set(key, value)

    def fail(self, error_type: str) -> None:
        """The operation ended in an error: `error.type` (low cardinality) and status ERROR."""
        if self.recording:
            self.set("error.type", error_type)
            self.error = True

    def end(self) -> None:
        if self.trace is None or self.end_ns:
            return
        self.end_ns = max(time.time_ns(), self.start_ns)
        self.trace.record(self)

    def headers(self) -> dict[str, str]:
        """`traceparent` (and `tracestate`) naming this span as the parent of a call it makes."""
        if self.trace is None:
            return {}
        out = {
            w3c.HEADER: w3c.format_traceparent(self.trace.trace_id, self.span_id, self.trace.flags)
        }
        if self.trace.state:
            out[w3c.STATE_HEADER] = self.trace.state
        return out

    def hand_over(self) -> Span:
        """Keep this span open past the `with span(...)` that made it (a stream that goes on
        after the call returned): whoever takes it must `end()` it."""
        if self.trace is not None:  # NOOP is shared: never marked
            self._held = True
        return self


NOOP = Span(None, "", INTERNAL, "")  # what every call returns when nothing is traced
_current: ContextVar[Span | None] = ContextVar("edgerag_span", default=None)


def current() -> Span:
    return _current.get() or NOOP


def content_allowed() -> bool:
    """Whether the current request's tenant opted in to request content in its spans."""
    span = _current.get()
    trace = span.trace if span is not None else None
    return (
        trace is not None
        and trace.recording
        and trace.tenant_id is not None
        and trace.tenant_id in trace.tracer.content_tenants
    )


def content(span: Span, key: str, value: str) -> None:
    """Record request content (a query, a prompt) only for a tenant that opted in."""
    if content_allowed():
        span.set(key, value)


def start(
    name: str, kind: int = INTERNAL, attributes: Mapping[str, Attr | None] | None = None
) -> Span:
    """A child of the current span that is not made current (ended by whoever holds it)."""
    parent = _current.get()
    if parent is None or parent.trace is None:
        return NOOP
    return Span(parent.trace, name, kind, parent.span_id, attributes=attributes)


@contextlib.contextmanager
def span(
    name: str, kind: int = INTERNAL, attributes: Mapping[str, Attr | None] | None = None
) -> Iterator[Span]:
    """A child of the current span, current inside the block and ended after it; an exception
    leaving the block is recorded as `error.type` (its class) unless the block set one.

    Only in coroutines: an async generator may resume in another task's context, so streams
    take a span from `start()` and end it themselves."""
    child = start(name, kind, attributes)
    if child is NOOP:
        yield NOOP
        return
    token = _current.set(child)
    try:
        yield child
    except BaseException as exc:
        if "error.type" not in child.attributes:
            child.fail(type(exc).__name__)
        raise
    finally:
        _reset(token)
        if not child._held:
            child.end()


# --- the server span of a request (used by kernel.runtime.app) ------------------------------
def begin(tracer: Tracer | None, headers: Mapping[str, str], tenant_id: str | None) -> Span | None:
    """The request's server span: the caller's trace when `traceparent` is valid, else a new
    trace (an invalid header is ignored, as the spec says). None when tracing is off."""
    if tracer is None:
        return None
    parent = w3c.parse_traceparent(headers.get(w3c.HEADER))
    if parent is None:
        trace = Trace(tracer, w3c.new_trace_id(), w3c.SAMPLED, "", tenant_id)
        return Span(trace, "", SERVER, "")
    state = w3c.parse_tracestate(headers.get(w3c.STATE_HEADER))
    trace = Trace(tracer, parent.trace_id, parent.flags, state, tenant_id)
    return Span(trace, "", SERVER, parent.parent_id, remote_parent=True)


@contextlib.contextmanager
def active(span: Span | None) -> Iterator[None]:
    """`span` current inside the block — None too: a request never sees its caller's span
    (in the emulator a service call runs in the caller's task)."""
    token = _current.set(span)
    try:
        yield
    finally:
        _reset(token)


def finish(server: Span, wait_until: WaitUntil | None) -> None:
    """End the request's server span and export its trace from `wait_until` (after the
    reply). Without `wait_until` there is nowhere to run the export: the spans are dropped."""
    trace = server.trace
    if trace is None:
        return
    if trace.dropped:
        server.set("edgerag.trace.dropped_spans", trace.dropped)
    server.end()
    if not trace.recording or not trace.spans:
        trace.flushed = True
        return
    if wait_until is None:
        trace.flushed = True
        count_dropped(trace.tracer.worker, "no_wait_until", len(trace.spans))
        return
    wait_until(_flush(trace))


async def _flush(trace: Trace) -> None:
    trace.flushed = True  # spans ending from here on are late: counted, not sent
    await trace.tracer.exporter.export(trace.tracer.service, list(trace.spans))


async def until_closed(
    stream: AsyncIterator[bytes], server: Span, wait_until: WaitUntil | None
) -> AsyncIterator[bytes]:
    """A streamed reply: `server` is current while the producer runs (each step, whoever
    pulls), and the span ends — and the trace is exported — when the stream does."""
    try:
        while True:
            token = _current.set(server)
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                break
            finally:
                _reset(token)
            yield chunk
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):  # the reader going away is no server error
            server.fail(type(exc).__name__)
        raise
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
        finish(server, wait_until)


def _reset(token: Token[Span | None]) -> None:
    # ValueError: set in another context (a generator resumed elsewhere): nothing to undo here.
    with contextlib.suppress(ValueError):
        _current.reset(token)


def count_dropped(worker: str, reason: str, spans: int) -> None:
    registry(worker).inc(
        "edgerag_trace_spans_dropped_total",
        spans,
        help="Spans recorded but not exported, by reason (limit, late, backlog, export, ...)",
        reason=reason,
    )
