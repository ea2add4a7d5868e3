"""W3C Trace Context (www.w3.org/TR/trace-context): the `traceparent` and `tracestate` headers.

Parsing is strict, as the spec asks of a receiver: anything malformed is no context at all (the
request then starts a trace of its own) — never a partial one. `tracestate` is kept only beside
a valid `traceparent` and is passed on unchanged: this code adds no vendor entry of its own.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

HEADER = "traceparent"
STATE_HEADER = "tracestate"
SAMPLED = 0x01
# Level 1 defines `sampled`, Level 2 adds `random` (the trace id is random); a forwarded
# traceparent keeps those two and clears the bits no version defines yet.
KNOWN_FLAGS = 0x03

_VERSION = re.compile(r"^[0-9a-f]{2}$")
_FIELDS = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# tracestate list members: key = simple-key / tenant-id "@" system-id; value = printable ASCII
# without "," and "=", not ending in a space (trace-context §3.3.1).
_KEY = re.compile(
    r"^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$"
)
_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")
MAX_STATE_MEMBERS = 32
MAX_STATE_CHARS = 512  # what the spec asks every vendor to propagate at least
_LONG_MEMBER = 128  # truncation removes members longer than this first (§3.3.1.5)


@dataclass(frozen=True)
class TraceParent:
    trace_id: str  # 32 lowercase hex, not all zeros
    parent_id: str  # 16 lowercase hex, not all zeros: the caller's span
    flags: int

    @property
    def sampled(self) -> bool:
        return bool(self.flags & SAMPLED)


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The header's context, or None when it is absent or invalid in any way.

    Version 00 is exactly `00-<trace-id>-<parent-id>-<flags>`. A later version (not `ff`) is
    read the way the spec says a 00 parser must: its first four fields, and anything after
    them only behind a `-`."""
    if value is None:
        return None
    value = value.strip(" \t")  # optional whitespace around a field value (RFC 9110)
    version = value[:2]
    if not _VERSION.match(version) or version == "ff":
        return None
    if version == "00" and len(value) != 55:
        return None
    if len(value) > 55 and value[55] != "-":
        return None
    found = _FIELDS.match(value[:55])
    if found is None:
        return None
    _, trace_id, parent_id, flags = found.groups()
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return TraceParent(trace_id, parent_id, int(flags, 16) & KNOWN_FLAGS)


def parse_tracestate(value: str | None) -> str:
    """The header as it may be passed on ("" when absent or invalid): members checked, at
    most 32, duplicates refused, cut to 512 characters the way the spec allows."""
    if not value:
        return ""
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]  # empty members are allowed and dropped
    keys: set[str] = set()
    for member in members:
        key, eq, val = member.partition("=")
        if not eq or not _KEY.match(key) or not _VALUE.match(val) or key in keys:
            return ""
        keys.add(key)
    if len(members) > MAX_STATE_MEMBERS:
        return ""
    joined = ",".join(members)
    if len(joined) > MAX_STATE_CHARS:
        members = [m for m in members if len(m) <= _LONG_MEMBER]
        while len(",".join(members)) > MAX_STATE_CHARS:
            members.pop()
        joined = ",".join(members)
    return joined


def format_traceparent(trace_id: str, span_id: str, flags: int) -> str:
    return f"00-{trace_id}-{span_id}-{flags & 0xFF:02x}"


def new_trace_id() -> str:
    return _nonzero_hex(16)


def new_span_id() -> str:
    return _nonzero_hex(8)


def _nonzero_hex(nbytes: int) -> str:
    while True:  # all zeros is the one invalid id; retry rather than ever send it
        value = secrets.token_hex(nbytes)
        if value.strip("0"):
            return value
