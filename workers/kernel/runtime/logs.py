"""Structured JSON logs, one line per event, with secrets masked before they are written.

On Cloudflare `print` goes to Workers Logs; locally to the dev server's stdout.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

_SECRET_KEYS = re.compile(r"(authorization|token|secret|password|api[_-]?key|cookie)", re.I)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_EDGERAG_KEY = re.compile(r"\b(er[kt]_[A-Za-z0-9]{4})[A-Za-z0-9_]+")  # API keys, refresh tokens
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")

# Tests swap the sink to capture lines; production writes to stdout.
Sink = Callable[[str], None]


def _stdout(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


_sink: Sink = _stdout


def set_sink(sink: Sink | None) -> None:
    global _sink
    _sink = sink or _stdout


def mask(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEYS.search(key) and value not in (None, ""):
        return "***"
    if isinstance(value, str):
        value = _BEARER.sub(r"\1***", value)
        value = _EDGERAG_KEY.sub(r"\1***", value)
        value = _JWT.sub("eyJ***", value)
        return _EMAIL.sub(r"***@\1", value)
    if isinstance(value, Mapping):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "level": level, "event": event, **mask(fields)}
    _sink(json.dumps(record, default=str, separators=(",", ":")))
