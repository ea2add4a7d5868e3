"""Trace context parsing (W3C), spans and their OTLP/HTTP JSON encoding, and the exporter's
bounds — without a collector: a recording exporter and fake transports."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any

import pytest

from kernel.bindings import traces
from kernel.bindings.ports import HttpError, HttpReply, HttpStream
from kernel.runtime import otlp, tracing
from kernel.runtime.metrics import registry
from kernel.runtime.tracecontext import (
    format_traceparent,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # the spec's example
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


class Recorder:
    """An exporter that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[tracing.Span]]] = []

    async def export(self, service: str, spans: Sequence[tracing.Span]) -> None:
        self.batches.append((service, list(spans)))


class Later:
    """`wait_until` that keeps the work for the test to run."""

    def __init__(self) -> None:
        self.work: list[Awaitable[Any]] = []

    def __call__(self, work: Awaitable[Any]) -> None:
        self.work.append(work)

    async def run(self) -> None:
        for work in self.work:
            await work


def tracer(worker: str = "rag", **kw: Any) -> tuple[tracing.Tracer, Recorder]:
    recorder = Recorder()
    return tracing.Tracer(worker, recorder, **kw), recorder


# --- traceparent -----------------------------------------------------------------------------
def test_the_specs_example_parses() -> None:
    parent = parse_traceparent(VALID)
    assert parent is not None
    assert (parent.trace_id, parent.parent_id, parent.flags, parent.sampled) == (
        TRACE,
        PARENT,
        1,
        True,
    )
    assert parse_traceparent(f" {VALID}\t") == parent  # optional whitespace around the value
    unsampled = parse_traceparent(f"00-{TRACE}-{PARENT}-00")
    assert unsampled is not None and not unsampled.sampled


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex must be lowercase
        f"00-{TRACE}-{PARENT.upper()}-01",
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 is exactly 55 characters
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE}-{PARENT}-0g",
        f"00-{TRACE}x{PARENT}-01",
        f"0-{TRACE}-{PARENT}-01",
        f"00_{TRACE}_{PARENT}_01",
        f"{VALID},{VALID}",  # two headers folded into one
        f"cc-{TRACE}-{PARENT}-01x",  # a later version: anything after 55 chars only behind "-"
    ],
)
def test_invalid_traceparents_are_no_context(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_a_later_version_is_read_by_its_first_fields() -> None:
    parent = parse_traceparent(f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like")
    assert parent is not None and (parent.trace_id, parent.parent_id) == (TRACE, PARENT)
    assert parse_traceparent(f"cc-{TRACE}-{PARENT}-01") == parent


def test_undefined_flags_are_cleared_sampled_and_random_kept() -> None:
    parent = parse_traceparent(f"00-{TRACE}-{PARENT}-ff")
    assert parent is not None and parent.flags == 0x03


def test_ids_are_fresh_lowercase_hex_and_format_round_trips() -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    assert len(trace_id) == 32 and len(span_id) == 16
    assert trace_id != new_trace_id() and span_id != new_span_id()
    header = format_traceparent(trace_id, span_id, 1)
    assert parse_traceparent(header) == parse_traceparent(header.lower())
    parsed = parse_traceparent(header)
    assert parsed is not None and (parsed.trace_id, parsed.parent_id) == (trace_id, span_id)


# --- tracestate ------------------------------------------------------------------------------
def test_tracestate_is_passed_on_as_given_with_whitespace_trimmed() -> None:
    assert parse_tracestate("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,,") == (
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    )
    assert parse_tracestate("fw529a3039@dt=d0ce9a8b") == "fw529a3039@dt=d0ce9a8b"


@pytest.mark.parametrize(
    "value",
    [
        "Rojo=1",  # keys are lowercase
        "rojo",  # no "="
        "rojo=a,rojo=b",  # a key twice
        "rojo=a=b",  # "=" in a value
        "rojo=caf\u00e9",  # values are printable ASCII
        "rojo=a\tb",
        ",".join(f"k{i}=v" for i in range(33)),  # more than 32 members
    ],
)
def test_an_invalid_tracestate_is_dropped_whole(value: str) -> None:
    assert parse_tracestate(value) == ""


def test_a_long_tracestate_loses_its_long_members_first() -> None:
    long_member = "big=" + "x" * 200
    short = [f"k{i}=" + "v" * 40 for i in range(12)]  # 12 × 44 + separators > 512
    kept = parse_tracestate(",".join([long_member, *short]))
    assert len(kept) <= 512 and "big=" not in kept and kept.startswith("k0=")


# --- spans -----------------------------------------------------------------------------------
async def test_a_request_with_a_traceparent_continues_that_trace() -> None:
    t, recorder = tracer("gateway")
    later = Later()
    server = tracing.begin(t, {"traceparent": VALID, "tracestate": "rojo=1"}, "t_abc")
    assert server is not None
    with tracing.active(server):
        with tracing.span("child", tracing.CLIENT, {"k": "v"}) as child:
            headers = child.headers()
        with pytest.raises(ValueError), tracing.span("broken"):
            raise ValueError("no")
    tracing.finish(server, later)
    await later.run()
    [(service, spans)] = recorder.batches
    assert service == "edgerag-gateway"
    by_name = {s.name: s for s in spans}
    assert {s.trace.trace_id for s in spans if s.trace} == {TRACE}
    assert server.parent_id == PARENT and server.remote_parent
    assert by_name["child"].parent_id == server.span_id
    assert headers == {
        "traceparent": f"00-{TRACE}-{by_name['child'].span_id}-01",
        "tracestate": "rojo=1",
    }
    assert by_name["broken"].error and by_name["broken"].attributes["error.type"] == "ValueError"


async def test_an_invalid_traceparent_starts_a_new_trace() -> None:
    t, _ = tracer()
    server = tracing.begin(t, {"traceparent": f"00-{TRACE.upper()}-{PARENT}-01"}, None)
    assert server is not None and server.trace is not None
    assert server.trace.trace_id != TRACE.upper().lower() and server.parent_id == ""
    assert server.trace.recording  # a new trace is sampled


async def test_an_unsampled_caller_is_propagated_and_never_recorded() -> None:
    t, recorder = tracer()
    later = Later()
    server = tracing.begin(t, {"traceparent": f"00-{TRACE}-{PARENT}-00"}, None)
    assert server is not None
    with tracing.active(server), tracing.span("call") as child:
        assert child.headers()["traceparent"].endswith("-00")
        child.set("ignored", 1)
    tracing.finish(server, later)
    await later.run()
    assert recorder.batches == [] and later.work == [] and child.attributes == {}


def test_without_a_tracer_nothing_is_traced_or_sent() -> None:
    assert tracing.begin(None, {"traceparent": VALID}, None) is None
    with tracing.active(None), tracing.span("x") as span:
        assert span is tracing.NOOP and span.headers() == {}
        span.set("a", 1)
        span.hand_over()
    assert tracing.NOOP.attributes == {} and not tracing.NOOP._held


def test_a_request_never_sees_its_callers_span() -> None:
    """In the emulator a service call runs in the caller's task: the callee's app sets its own
    span (None with tracing off) so nothing leaks across Workers."""
    t, _ = tracer()
    caller = tracing.begin(t, {}, None)
    with tracing.active(caller):
        with tracing.active(None):
            assert tracing.current() is tracing.NOOP
        assert tracing.current() is caller


async def test_spans_past_the_limit_are_counted_not_kept() -> None:
    t, recorder = tracer("unit-trace-limit", max_spans=3)
    later = Later()
    server = tracing.begin(t, {}, None)
    assert server is not None
    with tracing.active(server):
        for i in range(5):
            with tracing.span(f"s{i}"):
                pass
    tracing.finish(server, later)
    await later.run()
    [(_, spans)] = recorder.batches
    assert [s.name for s in spans] == ["s0", "s1", "s2"]  # the server span itself is over the cap
    assert (
        registry("unit-trace-limit").counter_value(
            "edgerag_trace_spans_dropped_total", reason="limit"
        )
        == 3
    )


async def test_attributes_are_bounded() -> None:
    t, _ = tracer()
    server = tracing.begin(t, {}, None)
    assert server is not None
    for i in range(tracing.MAX_ATTRIBUTES + 5):
        server.set(f"a{i}", i)
    server.set("a0", "x" * (tracing.MAX_VALUE_CHARS + 10))  # replacing an attribute is allowed
    assert len(server.attributes) == tracing.MAX_ATTRIBUTES and server.dropped_attributes == 5
    assert server.attributes["a0"] == "x" * tracing.MAX_VALUE_CHARS


async def test_content_only_for_a_tenant_that_opted_in() -> None:
    t, _ = tracer(content_tenants=frozenset({"t_yes"}))
    for tenant, expected in (("t_yes", True), ("t_no", False), (None, False)):
        server = tracing.begin(t, {}, tenant)
        with tracing.active(server), tracing.span("retrieval") as span:
            assert tracing.content_allowed() is expected
            tracing.content(span, "gen_ai.retrieval.query.text", "what is photosynthesis")
        assert ("gen_ai.retrieval.query.text" in span.attributes) is expected


async def test_a_streamed_reply_keeps_its_span_current_and_ends_it_at_the_end() -> None:
    t, recorder = tracer()
    later = Later()
    server = tracing.begin(t, {}, None)
    assert server is not None
    seen: list[tracing.Span] = []

    async def producer() -> AsyncIterator[bytes]:
        for part in (b"a", b"b"):
            seen.append(tracing.current())
            yield part

    stream = tracing.until_closed(producer(), server, later)
    assert [part async for part in stream] == [b"a", b"b"]
    assert seen == [server, server] and server.end_ns > 0
    await later.run()
    assert [s.name for s in recorder.batches[0][1]] == [""]  # unnamed: the app names it


# --- OTLP/HTTP JSON --------------------------------------------------------------------------
async def test_otlp_json_encoding() -> None:
    t, recorder = tracer("llm")
    later = Later()
    server = tracing.begin(t, {"traceparent": VALID, "tracestate": "rojo=1"}, None)
    assert server is not None
    server.name = "POST /generate"
    with tracing.active(server), tracing.span("chat m", tracing.CLIENT) as child:
        child.update({"s": "text", "i": 7, "f": 0.5, "b": True, "none": None})
        child.fail("timeout")
    tracing.finish(server, later)
    await later.run()
    body = json.loads(otlp.encode(t.service, recorder.batches[0][1]))
    [resource_spans] = body["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "edgerag-llm"}} in resource_spans[
        "resource"
    ]["attributes"]
    [scope] = resource_spans["scopeSpans"]
    assert scope["scope"]["name"] == "edgerag"
    spans = {s["name"]: s for s in scope["spans"]}
    chat, root = spans["chat m"], spans["POST /generate"]
    assert chat["traceId"] == root["traceId"] == TRACE
    assert len(chat["spanId"]) == 16 and chat["spanId"] == chat["spanId"].lower()
    assert chat["parentSpanId"] == root["spanId"] and root["parentSpanId"] == PARENT
    assert (chat["kind"], root["kind"]) == (3, 2)
    for s in (chat, root):
        assert s["startTimeUnixNano"].isdigit() and s["endTimeUnixNano"].isdigit()
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"])
        assert s["traceState"] == "rojo=1"
    assert chat["attributes"] == [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "7"}},
        {"key": "f", "value": {"doubleValue": 0.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "error.type", "value": {"stringValue": "timeout"}},
    ]
    assert chat["status"] == {"code": 2} and root["status"] == {"code": 0}
    assert root["flags"] == 0x301 and chat["flags"] == 0x101  # sampled; parent remote or not


def test_non_finite_doubles_are_spelled_as_the_protobuf_mapping_does() -> None:
    assert otlp.any_value(math.nan) == {"doubleValue": "NaN"}
    assert otlp.any_value(-math.inf) == {"doubleValue": "-Infinity"}


# --- the exporter ----------------------------------------------------------------------------
class Transport:
    """`Http.send` that records, answers `status`, raises `error`, or waits for `gate`."""

    def __init__(
        self, status: int = 200, error: Exception | None = None, gate: asyncio.Event | None = None
    ) -> None:
        self.status, self.error, self.gate = status, error, gate
        self.sent: list[tuple[str, Mapping[str, str], bytes]] = []

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpReply:
        self.sent.append((url, dict(headers), body or b""))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return HttpReply(self.status, {}, b"{}")

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpStream:
        raise AssertionError("the exporter sends whole bodies")


def _spans(n: int = 1) -> list[tracing.Span]:
    t, _ = tracer()
    server = tracing.begin(t, {}, None)
    assert server is not None
    server.end()
    return [server] * n


def test_configure_reads_the_endpoint_headers_and_content_tenants() -> None:
    env = {
        "EDGERAG_OTLP_ENDPOINT": "https://otel.example:4318/",
        "EDGERAG_OTLP_HEADERS": "Authorization=Basic%20dXNlcjpwdw==, x-team = k1 ,broken,bad name=x",
        "EDGERAG_TRACE_CONTENT_TENANTS": "t_a, t_b,",
    }
    transport = Transport()
    configured = traces.configure("rag", env.get, lambda: transport)
    assert configured is not None and configured.service == "edgerag-rag"
    assert configured.content_tenants == {"t_a", "t_b"}
    exporter = configured.exporter
    assert isinstance(exporter, traces.OtlpExporter)
    assert exporter.url == "https://otel.example:4318/v1/traces"
    assert exporter.headers == {
        "authorization": "Basic dXNlcjpwdw==",
        "x-team": "k1",
        "content-type": "application/json",
    }
    unset: dict[str, str] = {}
    assert traces.configure("rag", unset.get, lambda: transport) is None
    for bad in ("otel:4318", "ftp://otel", "http://"):
        bad_env = {"EDGERAG_OTLP_ENDPOINT": bad}
        assert traces.configure("rag", bad_env.get, lambda: transport) is None, bad


async def test_the_exporter_posts_one_otlp_body() -> None:
    transport = Transport()
    exporter = traces.OtlpExporter("unit-trace-ok", "http://c/v1/traces", {"x-k": "v"}, transport)
    await exporter.export("edgerag-rag", _spans())
    [(url, headers, body)] = transport.sent
    assert url == "http://c/v1/traces" and headers["content-type"] == "application/json"
    assert headers["x-k"] == "v" and "resourceSpans" in json.loads(body)
    assert registry("unit-trace-ok").counter_value("edgerag_trace_exports_total", outcome="ok") == 1


@pytest.mark.parametrize(
    ("transport", "outcome"),
    [
        (Transport(status=503), "rejected"),
        (Transport(error=HttpError("timeout", "slow")), "timeout"),
        (Transport(error=HttpError("network", "refused")), "network"),
        (Transport(error=RuntimeError("JsException")), "failed"),
    ],
)
async def test_a_failing_collector_is_counted_never_raised(
    transport: Transport, outcome: str
) -> None:
    worker = f"unit-trace-{outcome}"
    exporter = traces.OtlpExporter(worker, "http://c/v1/traces", {}, transport)
    await exporter.export("edgerag-rag", _spans(2))
    metrics = registry(worker)
    assert metrics.counter_value("edgerag_trace_exports_total", outcome=outcome) == 1
    assert metrics.counter_value("edgerag_trace_spans_dropped_total", reason="export") == 2
    assert exporter.in_flight == 0


async def test_a_slow_collector_holds_at_most_max_in_flight_exports() -> None:
    gate = asyncio.Event()
    transport = Transport(gate=gate)
    exporter = traces.OtlpExporter("unit-trace-backlog", "http://c/v1/traces", {}, transport)
    held = [
        asyncio.create_task(exporter.export("s", _spans())) for _ in range(traces.MAX_IN_FLIGHT)
    ]
    await asyncio.sleep(0)
    assert exporter.in_flight == traces.MAX_IN_FLIGHT
    await exporter.export("s", _spans(3))  # returns at once: dropped, not queued
    assert len(transport.sent) == traces.MAX_IN_FLIGHT
    metrics = registry("unit-trace-backlog")
    assert metrics.counter_value("edgerag_trace_spans_dropped_total", reason="backlog") == 3
    gate.set()
    await asyncio.gather(*held)
    assert exporter.in_flight == 0
    assert (
        metrics.counter_value("edgerag_trace_exports_total", outcome="ok") == traces.MAX_IN_FLIGHT
    )
