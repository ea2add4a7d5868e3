"""PDF object syntax: the tokenizer, the object parser and the content-stream operator reader.

Objects come out as Python values: int/float, bytes (strings), str (names), list (arrays),
dict (dictionaries), ``Ref`` (``n g R``), True/False/None; ``Stream`` pairs a stream's
dictionary with its raw bytes (decoded lazily by ``Document.decode``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from ingest.extract.pdf.errors import MAX_NESTING, Corrupt


class Ref(NamedTuple):
    num: int
    gen: int


class Stream:
    __slots__ = ("attrs", "decoded", "raw")

    def __init__(self, attrs: dict[str, Any], raw: bytes) -> None:
        self.attrs = attrs
        self.raw = raw
        self.decoded: bytes | None = None


# ---------------------------------------------------------------------------------- lexing

WS = b"\x00\t\n\x0c\r "
REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_TOKEN = re.compile(
    rb"[\x00\t\n\x0c\r ]*(?:%[^\r\n]*[\x00\t\n\x0c\r ]*)*(?:"
    rb"(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?!" + REGULAR + rb")"
    rb"|(?P<name>/" + REGULAR + rb"*)"
    rb"|(?P<str>\()"
    rb"|(?P<dopen><<)"
    rb"|(?P<hex><[0-9A-Fa-f\x00\t\n\x0c\r ]*>)"
    rb"|(?P<dclose>>>)"
    rb"|(?P<aopen>\[)"
    rb"|(?P<aclose>\])"
    rb"|(?P<kw>" + REGULAR + rb"+)"
    rb"|(?P<junk>[{}<>)])"
    rb")"
)
_REF_TAIL = re.compile(rb"[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+R(?!" + REGULAR + rb")")
_STR_SPECIAL = re.compile(rb"[()\\]")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_NOT_HEX = re.compile(rb"[^0-9A-Fa-f]")
_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\x0c",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}
_KEYWORD_VALUES: dict[bytes, Any] = {b"true": True, b"false": False, b"null": None}


def _name(token: bytes) -> str:
    body = token[1:]
    if b"#" in body:
        body = _NAME_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), body)
    return body.decode("latin-1")


def decode_hex(token: bytes) -> bytes:
    body = _NOT_HEX.sub(b"", token)
    if len(body) % 2:
        body += b"0"
    return bytes.fromhex(body.decode("ascii"))


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """Read a literal string whose "(" ends at `pos`; returns (bytes, position after ")")."""
    close = data.find(b")", pos)
    if close >= 0:
        chunk = data[pos:close]
        if b"(" not in chunk and b"\\" not in chunk:
            return chunk, close + 1
    out = bytearray()
    depth = 1
    n = len(data)
    search = _STR_SPECIAL.search
    while True:
        m = search(data, pos)
        if m is None:
            out += data[pos:]
            return bytes(out), n
        i = m.start()
        out += data[pos:i]
        ch = data[i]
        if ch == 0x28:  # (
            depth += 1
            out.append(ch)
            pos = i + 1
        elif ch == 0x29:  # )
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
            out.append(ch)
            pos = i + 1
        else:  # backslash
            if i + 1 >= n:
                return bytes(out), n
            nxt = data[i + 1]
            if 0x30 <= nxt <= 0x37:
                j = i + 1
                while j < n and j < i + 4 and 0x30 <= data[j] <= 0x37:
                    j += 1
                out.append(int(data[i + 1 : j], 8) & 0xFF)
                pos = j
            elif nxt == 0x0D:
                pos = i + 3 if data[i + 2 : i + 3] == b"\n" else i + 2
            elif nxt == 0x0A:
                pos = i + 2
            else:
                out += _ESCAPES.get(nxt, bytes((nxt,)))
                pos = i + 2


def _make_dict(items: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    it = iter(items)
    for key in it:
        value = next(it, None)
        if isinstance(key, str):
            out[key] = value
    return out


def parse_object(data: bytes, pos: int) -> tuple[Any, int]:
    """Parse one object at `pos`; `n g R` inside containers (and at top level) becomes a Ref."""
    stack: list[list[Any]] = []
    is_dict: list[bool] = []
    match = _TOKEN.match
    while True:
        m = match(data, pos)
        if m is None:
            raise Corrupt("unexpected end of data inside an object")
        kind = m.lastgroup
        pos = m.end()
        value: Any
        if kind == "num":
            tok = m.group(kind)
            value = float(tok) if b"." in tok else int(tok)
        elif kind == "name":
            value = _name(m.group(kind))
        elif kind == "str":
            value, pos = _literal(data, pos)
        elif kind == "hex":
            value = decode_hex(m.group(kind))
        elif kind == "aopen" or kind == "dopen":
            if len(stack) >= MAX_NESTING:
                raise Corrupt("objects nested too deeply")
            stack.append([])
            is_dict.append(kind == "dopen")
            continue
        elif kind == "aclose" or kind == "dclose":
            if not stack:
                continue
            items = stack.pop()
            value = _make_dict(items) if is_dict.pop() else items
        elif kind == "kw":
            tok = m.group(kind)
            if tok in _KEYWORD_VALUES:
                value = _KEYWORD_VALUES[tok]
            elif tok == b"R" and stack:
                cur = stack[-1]
                if len(cur) >= 2 and type(cur[-1]) is int and type(cur[-2]) is int:
                    gen = cur.pop()
                    cur[-1] = Ref(cur[-1], gen)
                continue
            elif stack:
                continue  # a stray keyword inside a container: ignore it
            else:
                return None, m.start(kind)  # e.g. `endobj` where an object was expected
        else:
            continue  # junk delimiter
        if not stack:
            if type(value) is int:
                tail = _REF_TAIL.match(data, pos)
                if tail is not None:
                    return Ref(value, int(tail.group(1))), tail.end()
            return value, pos
        stack[-1].append(value)


INLINE_IMAGE = b"<inline image>"
_EI = re.compile(rb"[\x00\t\n\x0c\r ]EI(?![^\x00\t\n\x0c\r ])")


def iter_ops(data: bytes) -> Iterator[tuple[bytes, list[Any]]]:
    """Content-stream operators with their operands, in order. Inline images are skipped."""
    operands: list[Any] = []
    stack: list[list[Any]] = []
    is_dict: list[bool] = []
    match = _TOKEN.match
    pos = 0
    while True:
        m = match(data, pos)
        if m is None:
            return
        kind = m.lastgroup
        pos = m.end()
        value: Any
        if kind == "kw":
            tok = m.group(kind)
            if tok in _KEYWORD_VALUES:
                value = _KEYWORD_VALUES[tok]
            elif stack:
                continue
            elif tok == b"ID":
                yield INLINE_IMAGE, operands
                operands = []
                end = _EI.search(data, pos + 1)
                pos = end.end() if end else len(data)
                continue
            else:
                yield tok, operands
                operands = []
                continue
        elif kind == "num":
            tok = m.group(kind)
            value = float(tok) if b"." in tok else int(tok)
        elif kind == "str":
            value, pos = _literal(data, pos)
        elif kind == "name":
            value = _name(m.group(kind))
        elif kind == "hex":
            value = decode_hex(m.group(kind))
        elif kind == "aopen" or kind == "dopen":
            if len(stack) >= MAX_NESTING:
                raise Corrupt("content nested too deeply")
            stack.append([])
            is_dict.append(kind == "dopen")
            continue
        elif kind == "aclose" or kind == "dclose":
            if not stack:
                continue
            items = stack.pop()
            value = _make_dict(items) if is_dict.pop() else items
        else:
            continue
        if stack:
            stack[-1].append(value)
        else:
            operands.append(value)


# ---------------------------------------------------------------------------------- operands


def as_int(value: Any, default: int) -> int:
    return value if type(value) is int else (int(value) if type(value) is float else default)


def as_num(value: Any, default: float = 0.0) -> float:
    return float(value) if type(value) in (int, float) else default
