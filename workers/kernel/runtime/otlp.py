"""Spans as an OTLP/HTTP JSON body: an `ExportTraceServiceRequest` in the JSON Protobuf Encoding
of the OTLP specification — lowerCamelCase field names, trace and span ids as lowercase hex
(not base64), enums (kind, status code) as integers, 64-bit integers (times, `intValue`) as
decimal strings, attributes as `{key, value: {stringValue | intValue | doubleValue | boolValue}}`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from kernel.runtime.tracing import Attr, Span

SCOPE = "edgerag"
STATUS_UNSET, STATUS_ERROR = 0, 2
# Span.flags: bits 0-7 the W3C trace flags; bit 8 says whether bit 9 (the parent is remote)
# is known (trace.proto SpanFlags).
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200


def encode(service: str, spans: Sequence[Span]) -> bytes:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        attribute("service.name", service),
                        attribute("telemetry.sdk.name", SCOPE),
                        attribute("telemetry.sdk.language", "python"),
                    ]
                },
                "scopeSpans": [{"scope": {"name": SCOPE}, "spans": [span(s) for s in spans]}],
            }
        ]
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def span(s: Span) -> dict[str, Any]:
    assert s.trace is not None, "only recorded spans are exported"
    out: dict[str, Any] = {
        "traceId": s.trace.trace_id,
        "spanId": s.span_id,
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": str(s.start_ns),
        "endTimeUnixNano": str(s.end_ns),
        "attributes": [attribute(k, v) for k, v in s.attributes.items()],
        "status": {"code": STATUS_ERROR if s.error else STATUS_UNSET},
        "flags": (s.trace.flags & 0xFF) | HAS_IS_REMOTE | (IS_REMOTE if s.remote_parent else 0),
    }
    if s.parent_id:
        out["parentSpanId"] = s.parent_id
    if s.trace.state:
        out["traceState"] = s.trace.state
    if s.dropped_attributes:
        out["droppedAttributesCount"] = s.dropped_attributes
    return out


def attribute(key: str, value: Attr) -> dict[str, Any]:
    return {"key": key, "value": any_value(value)}


def any_value(value: Attr) -> dict[str, Any]:
    if isinstance(value, bool):  # before int: bool is an int in Python
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        # JSON has no NaN or infinities; the protobuf JSON mapping spells them as strings.
        return {
            "doubleValue": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    return {"stringValue": str(value)}
