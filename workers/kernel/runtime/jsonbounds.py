"""The one JSON parser for untrusted bytes: bounds nesting and number size before parsing.

`json.loads` recurses once per nesting level (RecursionError past ~1,000 on CPython, sooner on
Pyodide's smaller stack) and `int()` refuses more than 4,300 digits with a ValueError; both used
to surface as 500s. A linear pre-scan measures the deepest nesting and the longest digit run
outside strings, so hostile input is refused (400 `invalid_json`) before json.loads sees it.
Strict JSON besides: NaN/Infinity literals, overflowing floats and lone UTF-16 surrogates (which
no later UTF-8 write could store) are refused too.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from kernel.runtime.errors import BadRequest

# Our deepest request model nests 3 levels; 32 leaves room for tool arguments and the like.
MAX_DEPTH = 32
# A double has at most 17 significant digits; 100 is generous and far from int()'s 4,300.
MAX_NUMBER_DIGITS = 100

# A string token; an unterminated one runs to the end (`\Z`) so the scan never backtracks to
# retry from every later quote (quadratic on `"\"\"\"…`). json.loads then reports the syntax.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# A digit run longer than the limit, matched only from the run's start so the scan stays linear.
_LONG_DIGITS = re.compile(rb"(?<![0-9])[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
# A \uD800-\uDFFF escape somewhere: only then is the parsed value searched for lone surrogates.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_json")


def _depth(skeleton: bytes) -> int:
    """Deepest array/object nesting of JSON with its strings emptied (C-speed: no Python loop)."""
    brackets = skeleton.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _refuse(f"JSON number {text[:20]!r} is not finite")
    return value


def _no_constants(name: str) -> Any:
    raise _refuse(f"{name} is not JSON (numbers must be finite)")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json(raw: bytes | str, *, what: str = "request body") -> Any:
    """Parse untrusted JSON; every refusal is a BadRequest with code `invalid_json`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    skeleton = _STRING.sub(b'""', data)
    if _LONG_DIGITS.search(skeleton):
        raise _refuse(f"{what} has a number with more than {MAX_NUMBER_DIGITS} digits")
    if _depth(skeleton) > MAX_DEPTH:
        raise _refuse(f"{what} is nested deeper than {MAX_DEPTH} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(f"{what} is not valid UTF-8") from exc
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise _refuse(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise _refuse(f"{what} has a lone UTF-16 surrogate escape (not encodable as UTF-8)")
    return value
