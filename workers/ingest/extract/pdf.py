"""PDF → text in pure Python (stdlib only, so it runs inside the Worker's Pyodide).

What it reads
-------------
* File structure: classic xref tables, xref streams (with PNG/TIFF predictors), hybrid files,
  incremental updates (/Prev chains) and object streams (/Type /ObjStm). When the xref is
  missing or points at the wrong bytes, objects are found by scanning for ``n g obj``.
* Streams: FlateDecode (+ predictors, salvaging a damaged tail), LZWDecode, ASCIIHexDecode,
  ASCII85Decode, RunLengthDecode. A stream with any other filter (images: DCT, JPX, CCITT,
  JBIG2 ...) is skipped. ``/Length`` may be indirect or wrong: we then look for ``endstream``.
* Text: the page tree (inherited /Resources), content streams (single or array), Form
  XObjects (recursively, depth-limited), ``q Q cm BT ET Tf Td TD Tm T* TL Tc Tw Tz Tj TJ ' "``.
  Fonts: /ToUnicode CMaps (bfchar, bfrange incl. the array form, codespace ranges), simple
  fonts with Standard/WinAnsi/MacRoman/PDFDoc encodings and /Differences (glyph names, incl.
  ``uniXXXX``/``uXXXX``/``f_i``/``a.sc``), Type0 fonts with 2-byte (Identity-H) codes, Type3.

Layout heuristic (documented because retrieval offsets depend on it)
--------------------------------------------------------------------
Text is emitted in **content-stream order**: producers write multi-column pages column by
column, so stream order is reading order far more often than any geometric sort. Between two
consecutive text runs we compare positions in the run's own baseline frame (so rotated pages
behave): a move across the baseline of more than half the font size starts a new line ("\\n");
a move down of more than 2.1 font sizes, or any move *up* by more than a line, starts a new
block ("\\n\\n"). On the same line, a gap wider than 0.15 em (or a jump back of more than an
em) inserts one space, and so does a TJ displacement wider than 0.15 em. Ligatures ﬁ ﬂ ﬀ ﬃ ﬄ
are expanded, NULs and other control characters dropped, NBSP becomes a space, trailing blanks
are stripped from each line.

Output: each page's text, pages joined by ``PAGE_SEPARATOR`` ("\\n\\n"); ``Extracted.pages``
holds exact spans (``text[p.char_start:p.char_end]`` is page p, separator excluded, empty pages
give empty spans). ``title`` comes from the Info dictionary; ``headings`` from the document
outline (bookmarks), placed where the bookmark's title appears on its target page.

Every failure is an ``ExtractionFailed`` with a message a person can act on; internal errors
are wrapped at the boundary. Budgets: 64 MB of decoded stream data, 2000 pages, 20 M content
operators, nesting/recursion limits, cycle detection in the page tree, refs and XObjects.
"""

from __future__ import annotations

import base64
import contextlib
import re
import struct
import unicodedata
import zlib
from bisect import bisect_right
from collections.abc import Iterator
from math import hypot
from typing import Any, NamedTuple

from ingest.extract.base import Extracted, ExtractionFailed, Heading, Page

PAGE_SEPARATOR = "\n\n"
MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_PAGES = 2000
MAX_OPERATORS = 20_000_000
MAX_FORM_DEPTH = 10
MAX_NESTING = 256
MAX_OUTLINE_ITEMS = 5000

MSG_NOT_PDF = "this file is not a PDF (it has no %PDF- header)"
MSG_CORRUPT = (
    "the PDF is truncated or corrupt beyond recovery (no readable page tree); "
    "re-export or re-download it and retry"
)
MSG_ENCRYPTED = "the PDF is password-protected (encrypted); remove the password and upload it again"
MSG_NO_PAGES = "the PDF has no pages"
MSG_TOO_MANY_PAGES = f"the PDF has more than {MAX_PAGES} pages; split it into smaller files"
MSG_TOO_BIG = (
    f"the PDF expands to more than {MAX_DECODED_BYTES // (1024 * 1024)} MB of data when "
    "decompressed; split it into smaller files"
)
MSG_TOO_COMPLEX = (
    "the PDF's pages are too complex to process (too many drawing operations); split it"
)
MSG_IMAGES_ONLY = "the PDF contains only images (scanned?); run OCR first, then upload the result"
MSG_NO_UNICODE = (
    "the PDF's text uses fonts without a Unicode mapping, so it cannot be extracted; "
    "re-export it with a different tool or run OCR first"
)
MSG_NO_TEXT = (
    "the PDF has no extractable text (blank pages, or text drawn as vector outlines); run OCR first"
)
MSG_UNREADABLE = (
    "the PDF is corrupt and could not be read; re-save it (e.g. print to PDF) and retry"
)


class _Corrupt(Exception):
    """Structure we cannot make sense of (caught and turned into a recovery attempt or a 422)."""


class _Unsupported(Exception):
    """A stream filter we do not decode (images): the caller skips the stream."""


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

_WS = b"\x00\t\n\x0c\r "
_REGULAR = rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]"
_TOKEN = re.compile(
    rb"[\x00\t\n\x0c\r ]*(?:%[^\r\n]*[\x00\t\n\x0c\r ]*)*(?:"
    rb"(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?!" + _REGULAR + rb")"
    rb"|(?P<name>/" + _REGULAR + rb"*)"
    rb"|(?P<str>\()"
    rb"|(?P<dopen><<)"
    rb"|(?P<hex><[0-9A-Fa-f\x00\t\n\x0c\r ]*>)"
    rb"|(?P<dclose>>>)"
    rb"|(?P<aopen>\[)"
    rb"|(?P<aclose>\])"
    rb"|(?P<kw>" + _REGULAR + rb"+)"
    rb"|(?P<junk>[{}<>)])"
    rb")"
)
_REF_TAIL = re.compile(rb"[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+R(?!" + _REGULAR + rb")")
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


def _hex(token: bytes) -> bytes:
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


def _parse_object(data: bytes, pos: int) -> tuple[Any, int]:
    """Parse one object at `pos`; `n g R` inside containers (and at top level) becomes a Ref."""
    stack: list[list[Any]] = []
    is_dict: list[bool] = []
    match = _TOKEN.match
    while True:
        m = match(data, pos)
        if m is None:
            raise _Corrupt("unexpected end of data inside an object")
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
            value = _hex(m.group(kind))
        elif kind == "aopen" or kind == "dopen":
            if len(stack) >= MAX_NESTING:
                raise _Corrupt("objects nested too deeply")
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


_INLINE_IMAGE = b"<inline image>"
_EI = re.compile(rb"[\x00\t\n\x0c\r ]EI(?![^\x00\t\n\x0c\r ])")


def _iter_ops(data: bytes) -> Iterator[tuple[bytes, list[Any]]]:
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
                yield _INLINE_IMAGE, operands
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
            value = _hex(m.group(kind))
        elif kind == "aopen" or kind == "dopen":
            if len(stack) >= MAX_NESTING:
                raise _Corrupt("content nested too deeply")
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


# ---------------------------------------------------------------------------------- filters


def _png_unpredict(data: bytes, columns: int, colors: int, bpc: int) -> bytes:
    bpp = max(1, colors * bpc // 8)
    rowlen = (colors * bpc * columns + 7) // 8
    if rowlen <= 0:
        return data
    out = bytearray()
    prev = bytearray(rowlen)
    stride = rowlen + 1
    for start in range(0, len(data) - 1, stride):
        ftype = data[start]
        row = bytearray(data[start + 1 : start + stride])
        if len(row) < rowlen:
            row.extend(bytes(rowlen - len(row)))
        if ftype == 1:
            for i in range(bpp, rowlen):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif ftype == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
        elif ftype == 3:
            for i in range(rowlen):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(rowlen):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        out += row
        prev = row
    return bytes(out)


def _unpredict(data: bytes, parms: dict[str, Any]) -> bytes:
    predictor = parms.get("Predictor", 1)
    if not isinstance(predictor, int) or predictor < 2:
        return data
    columns = _int(parms.get("Columns"), 1)
    colors = _int(parms.get("Colors"), 1)
    bpc = _int(parms.get("BitsPerComponent"), 8)
    if not (0 < columns < 1 << 24 and 0 < colors < 64 and bpc in (1, 2, 4, 8, 16)):
        return data
    if predictor >= 10:
        return _png_unpredict(data, columns, colors, bpc)
    if predictor == 2 and bpc == 8:  # TIFF horizontal differencing, the common 8-bit case
        out = bytearray(data)
        rowlen = columns * colors
        for start in range(0, len(out), rowlen):
            for i in range(start + colors, min(start + rowlen, len(out))):
                out[i] = (out[i] + out[i - colors]) & 0xFF
        return bytes(out)
    return data


def _lzw(data: bytes, early: int, limit: int) -> bytes:
    out = bytearray()
    table: list[bytes] = [bytes((i,)) for i in range(256)] + [b"", b""]
    bits, buf, nbits = 9, 0, 0
    prev: bytes | None = None
    for byte in data:
        buf = (buf << 8) | byte
        nbits += 8
        while nbits >= bits:
            nbits -= bits
            code = (buf >> nbits) & ((1 << bits) - 1)
            buf &= (1 << nbits) - 1
            if code == 256:
                del table[258:]
                bits, prev = 9, None
                continue
            if code == 257:
                return bytes(out)
            if prev is None:
                if code >= len(table):
                    return bytes(out)
                entry = table[code]
            elif code < len(table):
                entry = table[code]
                table.append(prev + entry[:1])
            elif code == len(table):
                entry = prev + prev[:1]
                table.append(entry)
            else:
                return bytes(out)
            out += entry
            if len(out) > limit:
                raise ExtractionFailed(MSG_TOO_BIG)
            prev = entry
            if len(table) + early >= (1 << bits) and bits < 12:
                bits += 1
    return bytes(out)


def _run_length(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        length = data[i]
        if length == 128:
            break
        if length < 128:
            out += data[i + 1 : i + 2 + length]
            i += length + 2
        else:
            out += data[i + 1 : i + 2] * (257 - length)
            i += 2
    return bytes(out)


def _ascii85(data: bytes) -> bytes:
    body = data.strip(_WS)
    if body.startswith(b"<~"):
        body = body[2:]
    end = body.find(b"~")
    if end >= 0:
        body = body[:end]
    body = bytes(c for c in body if c not in _WS)
    return base64.a85decode(body)


_FILTER_ALIASES = {
    "Fl": "FlateDecode",
    "LZW": "LZWDecode",
    "AHx": "ASCIIHexDecode",
    "A85": "ASCII85Decode",
    "RL": "RunLengthDecode",
}


def _int(value: Any, default: int) -> int:
    return value if type(value) is int else (int(value) if type(value) is float else default)


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if type(value) in (int, float) else default


# ---------------------------------------------------------------------------------- document

_OBJ_HEADER = re.compile(
    rb"(?<![0-9])(\d{1,10})[\x00\t\n\x0c\r ]+(\d{1,5})[\x00\t\n\x0c\r ]+obj(?!" + _REGULAR + rb")"
)
_XREF_SUBSECTION = re.compile(rb"[\x00\t\n\x0c\r ]*(\d+)[\x00\t\n\x0c\r ]+(\d+)[ \t]*[\r\n]")
_XREF_ENTRY = re.compile(rb"[\x00\t\n\x0c\r ]*(\d{1,10})[ \t]+(\d{1,5})[ \t]+([nf])")
_STREAM_KW = re.compile(rb"[\x00\t\n\x0c\r ]*stream(?:\r\n|\n|\r)?")
_ENDSTREAM = re.compile(rb"[\x00\t\n\x0c\r ]*endstream")
_TRAILER = re.compile(rb"trailer[\x00\t\n\x0c\r ]*<<")


class _Document:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.xref: dict[int, tuple[int, int, int]] = {}  # num -> (kind, a, b)
        self.trailer: dict[str, Any] = {}
        self.cache: dict[int, Any] = {}
        self.loading: set[int] = set()
        self.budget = MAX_DECODED_BYTES
        self.scanned: dict[int, int] | None = None
        self.objstms: dict[int, tuple[bytes, list[int]]] = {}
        self.recovered = False

    # -- objects ---------------------------------------------------------------------

    def resolve(self, obj: Any) -> Any:
        depth = 0
        while type(obj) is Ref:
            obj = self.get(obj.num)
            depth += 1
            if depth > 32:
                return None
        return obj

    def rdict(self, obj: Any) -> dict[str, Any]:
        obj = self.resolve(obj)
        if isinstance(obj, Stream):
            return obj.attrs
        return obj if isinstance(obj, dict) else {}

    def get(self, num: int) -> Any:
        cache = self.cache
        if num in cache:
            return cache[num]
        if num in self.loading:
            return None  # reference cycle
        self.loading.add(num)
        try:
            obj = self._load(num)
        except _Corrupt:
            obj = None  # unreadable (e.g. cut off by truncation): treat as null, like readers do
        finally:
            self.loading.discard(num)
        cache[num] = obj
        return obj

    def _load(self, num: int) -> Any:
        entry = self.xref.get(num)
        if entry is not None:
            kind, a, b = entry
            if kind == 1:
                found, obj = self._parse_indirect(a, num)
                if found:
                    return obj
            elif kind == 2:
                found, obj = self._from_objstm(a, b, num)
                if found:
                    return obj
        offsets = self._scan()
        if num in offsets and (entry is None or entry[0] != 1 or entry[1] != offsets[num]):
            found, obj = self._parse_indirect(offsets[num], num)
            if found:
                return obj
        return None

    def _parse_indirect(self, offset: int, num: int | None) -> tuple[bool, Any]:
        data = self.data
        if not 0 <= offset < len(data):
            return False, None
        m = _OBJ_HEADER.match(data, offset)
        if m is None:
            # Tolerate offsets that are off by a little (a common writer bug).
            m = _OBJ_HEADER.search(data, max(0, offset - 32), offset + 64)
            if m is None:
                return False, None
        if num is not None and int(m.group(1)) != num:
            return False, None
        obj, pos = _parse_object(data, m.end())
        if isinstance(obj, dict):
            sm = _STREAM_KW.match(data, pos)
            if sm is not None:
                return True, Stream(obj, self._stream_bytes(obj, sm.end()))
        return True, obj

    def _stream_bytes(self, attrs: dict[str, Any], start: int) -> bytes:
        data = self.data
        length = attrs.get("Length")
        if type(length) is Ref:
            length = self.get(length.num)
        if type(length) is int and 0 <= length <= len(data) - start:
            end = start + length
            if _ENDSTREAM.match(data, end):
                return data[start:end]
        end = data.find(b"endstream", start)
        if end < 0:
            return data[start:]
        if data[end - 2 : end] == b"\r\n":
            end -= 2
        elif data[end - 1 : end] in (b"\n", b"\r"):
            end -= 1
        return data[start:end]

    def _from_objstm(self, stm_num: int, index: int, num: int) -> tuple[bool, Any]:
        loaded = self.objstms.get(stm_num)
        if loaded is None:
            stm = self.get(stm_num)
            if not isinstance(stm, Stream):
                return False, None
            try:
                body = self.decode(stm)
            except _Unsupported:
                return False, None
            count = _int(stm.attrs.get("N"), 0)
            first = _int(stm.attrs.get("First"), 0)
            header = body[:first].split()
            pairs: list[int] = []
            for i in range(0, min(len(header), 2 * count) - 1, 2):
                try:
                    pairs += (int(header[i]), first + int(header[i + 1]))
                except ValueError:
                    break
            loaded = (body, pairs)
            self.objstms[stm_num] = loaded
        body, pairs = loaded
        # Trust the index, but verify the number; otherwise search the header for it.
        candidates = []
        if 0 <= 2 * index < len(pairs) and pairs[2 * index] == num:
            candidates.append(pairs[2 * index + 1])
        else:
            candidates += [pairs[i + 1] for i in range(0, len(pairs), 2) if pairs[i] == num]
        for offset in candidates:
            if 0 <= offset < len(body):
                return True, _parse_object(body, offset)[0]
        return False, None

    # -- streams ---------------------------------------------------------------------

    def decode(self, stream: Stream) -> bytes:
        if stream.decoded is not None:
            return stream.decoded
        attrs = stream.attrs
        filters = self.resolve(attrs.get("Filter"))
        parms = self.resolve(attrs.get("DecodeParms", attrs.get("DP")))
        if not isinstance(filters, list):
            filters = [filters] if filters else []
        if not isinstance(parms, list):
            parms = [parms] * len(filters)
        data = stream.raw
        for i, name in enumerate(filters):
            name = _FILTER_ALIASES.get(name, name) if isinstance(name, str) else name
            p = self.rdict(parms[i] if i < len(parms) else None)
            if name == "FlateDecode":
                data = _unpredict(self._inflate(data), p)
            elif name == "LZWDecode":
                data = _unpredict(_lzw(data, _int(p.get("EarlyChange"), 1), self.budget), p)
            elif name == "ASCIIHexDecode":
                end = data.find(b">")
                data = _hex(data if end < 0 else data[:end])
            elif name == "ASCII85Decode":
                data = _ascii85(data)
            elif name == "RunLengthDecode":
                data = _run_length(data)
            elif name == "Crypt":
                continue
            else:
                raise _Unsupported(str(name))
            self._spend(len(data))
        stream.decoded = data
        return data

    def _spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise ExtractionFailed(MSG_TOO_BIG)

    def _inflate(self, raw: bytes) -> bytes:
        limit = self.budget + 1
        try:
            out = zlib.decompressobj().decompress(raw, limit)
        except zlib.error:
            out = self._inflate_salvage(raw, limit)
        if len(out) >= limit:
            raise ExtractionFailed(MSG_TOO_BIG)
        return out

    @staticmethod
    def _inflate_salvage(raw: bytes, limit: int) -> bytes:
        """A damaged deflate stream: keep whatever decodes before the damage."""
        best = b""
        for wbits, skip in ((15, 0), (-15, 2), (-15, 0)):
            d = zlib.decompressobj(wbits)
            parts: list[bytes] = []
            size = 0
            try:
                for i in range(skip, len(raw), 1024):
                    chunk = d.decompress(raw[i : i + 1024], limit - size)
                    parts.append(chunk)
                    size += len(chunk)
                    if size >= limit:
                        break
            except zlib.error:
                pass
            got = b"".join(parts)
            if len(got) > len(best):
                best = got
        return best

    # -- xref ------------------------------------------------------------------------

    def load_structure(self) -> None:
        try:
            self._read_xref_chain()
        except _Corrupt:
            self.xref.clear()
            self.trailer = {}
        if self.trailer.get("Encrypt") is not None:
            return  # refused by the caller; encrypted objects would only look corrupt
        if not self._root_ok():
            self._recover()

    def _root_ok(self) -> bool:
        root = self.rdict(self.trailer.get("Root"))
        return bool(root) and bool(self.rdict(root.get("Pages")))

    def _read_xref_chain(self) -> None:
        data = self.data
        idx = data.rfind(b"startxref", max(0, len(data) - 4096))
        if idx < 0:
            idx = data.rfind(b"startxref")
        if idx < 0:
            raise _Corrupt("no startxref")
        m = re.match(rb"startxref[\x00\t\n\x0c\r ]+(\d+)", data[idx : idx + 40])
        if m is None:
            raise _Corrupt("bad startxref")
        offset: int | None = int(m.group(1))
        seen: set[int] = set()
        while offset is not None and offset not in seen and len(seen) < 256:
            seen.add(offset)
            trailer = self._read_xref_section(offset)
            for key, value in trailer.items():
                self.trailer.setdefault(key, value)
            prev = trailer.get("Prev")
            offset = prev if type(prev) is int else None

    def _read_xref_section(self, offset: int) -> dict[str, Any]:
        data = self.data
        if not 0 <= offset < len(data):
            raise _Corrupt("xref offset out of range")
        m = re.compile(rb"[\x00\t\n\x0c\r ]*xref").match(data, offset)
        if m is None:
            return self._read_xref_stream(offset)
        pos = m.end()
        xref = self.xref
        while True:
            sub = _XREF_SUBSECTION.match(data, pos)
            if sub is None:
                break
            first, count = int(sub.group(1)), int(sub.group(2))
            pos = sub.end()
            for i in range(count):
                e = _XREF_ENTRY.match(data, pos)
                if e is None:
                    raise _Corrupt("bad xref entry")
                pos = e.end()
                if e.group(3) == b"n" and first + i not in xref:
                    xref[first + i] = (1, int(e.group(1)), int(e.group(2)))
        at = data.find(b"trailer", pos, pos + 256)
        t = _TRAILER.match(data, at) if at >= 0 else None
        if t is None:
            raise _Corrupt("no trailer")
        trailer, _ = _parse_object(data, t.end() - 2)
        if not isinstance(trailer, dict):
            raise _Corrupt("bad trailer")
        stm = trailer.get("XRefStm")
        if type(stm) is int:
            with contextlib.suppress(_Corrupt):
                self._read_xref_stream(stm)
        return trailer

    def _read_xref_stream(self, offset: int) -> dict[str, Any]:
        found, stm = self._parse_indirect(offset, None)
        if not found or not isinstance(stm, Stream) or stm.attrs.get("Type") != "XRef":
            raise _Corrupt("no xref stream at offset")
        attrs = stm.attrs
        try:
            body = self.decode(stm)
        except _Unsupported as exc:
            raise _Corrupt("xref stream filter") from exc
        widths = attrs.get("W")
        if not (
            isinstance(widths, list) and len(widths) == 3 and all(type(w) is int for w in widths)
        ):
            raise _Corrupt("bad /W")
        w0, w1, w2 = widths
        if min(widths) < 0 or max(widths) > 8:
            raise _Corrupt("bad /W")
        size = _int(attrs.get("Size"), 0)
        index = attrs.get("Index")
        if not isinstance(index, list) or not index:
            index = [0, size]
        rec = w0 + w1 + w2
        if rec == 0:
            raise _Corrupt("bad /W")
        pos = 0
        xref = self.xref
        for j in range(0, len(index) - 1, 2):
            first, count = _int(index[j], 0), _int(index[j + 1], 0)
            for i in range(count):
                if pos + rec > len(body):
                    break
                kind = int.from_bytes(body[pos : pos + w0], "big") if w0 else 1
                a = int.from_bytes(body[pos + w0 : pos + w0 + w1], "big")
                b = int.from_bytes(body[pos + w0 + w1 : pos + rec], "big")
                pos += rec
                if kind in (1, 2) and first + i not in xref:
                    xref[first + i] = (kind, a, b)
        return attrs

    def _scan(self) -> dict[int, int]:
        if self.scanned is None:
            self.scanned = {}
            for m in _OBJ_HEADER.finditer(self.data):
                self.scanned[int(m.group(1))] = m.start()  # later (newer) definitions win
        return self.scanned

    def _recover(self) -> None:
        """The xref is unusable: rebuild from `n g obj` headers, trailers and object streams."""
        self.recovered = True
        data = self.data
        offsets = self._scan()
        self.cache.clear()
        self.objstms.clear()
        self.xref = {num: (1, off, 0) for num, off in offsets.items()}
        starts = sorted((off, num) for num, off in offsets.items())
        keys = [s[0] for s in starts]

        def owner(pos: int) -> int | None:
            i = bisect_right(keys, pos) - 1
            return starts[i][1] if i >= 0 else None

        # Objects living in object streams.
        for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/ObjStm(?!" + _REGULAR + rb")", data):
            stm_num = owner(m.start())
            stm = self.get(stm_num) if stm_num is not None else None
            if stm_num is None or not isinstance(stm, Stream):
                continue
            try:
                self._from_objstm(stm_num, 0, -1)  # loads the header
            except _Corrupt:
                continue
            loaded = self.objstms.get(stm_num)
            if loaded is None:
                continue
            pairs = loaded[1]
            for i in range(0, len(pairs), 2):
                if pairs[i] not in self.xref:
                    self.xref[pairs[i]] = (2, stm_num, i // 2)
        trailer: dict[str, Any] = {}
        for m in _TRAILER.finditer(data):
            try:
                t, _ = _parse_object(data, m.end() - 2)
            except _Corrupt:
                continue
            if isinstance(t, dict):
                trailer.update(t)
        for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/XRef(?!" + _REGULAR + rb")", data):
            num = owner(m.start())
            obj = self.get(num) if num is not None else None
            if isinstance(obj, Stream):
                trailer.update(
                    {k: v for k, v in obj.attrs.items() if k in ("Root", "Info", "Encrypt")}
                )
        self.trailer = trailer
        if not self._root_ok():
            for m in re.finditer(rb"/Type[\x00\t\n\x0c\r ]*/Catalog(?!" + _REGULAR + rb")", data):
                num = owner(m.start())
                if num is not None:
                    self.trailer["Root"] = Ref(num, 0)
                    if self._root_ok():
                        break
        # Objects inside object streams have no header to scan: look for catalogs there too.
        if not self._root_ok():
            for num, entry in list(self.xref.items()):
                if entry[0] == 2:
                    obj = self.get(num)
                    if isinstance(obj, dict) and obj.get("Type") == "Catalog":
                        self.trailer["Root"] = Ref(num, 0)
                        if self._root_ok():
                            break

    def orphan_pages(self) -> list[dict[str, Any]]:
        """Last resort when the page tree is gone: every /Type /Page object, in file order."""
        out = []
        offsets = sorted((off, num) for num, off in self._scan().items())
        for _, num in offsets:
            obj = self.get(num)
            if isinstance(obj, dict) and obj.get("Type") == "Page":
                out.append(obj)
                if len(out) > MAX_PAGES:
                    raise ExtractionFailed(MSG_TOO_MANY_PAGES)
        return out

    def _inherited_resources(self, page: dict[str, Any]) -> dict[str, Any]:
        node: Any = page
        for _ in range(32):
            if not isinstance(node, dict):
                break
            if node.get("Resources") is not None:
                return self.rdict(node.get("Resources"))
            node = self.resolve(node.get("Parent"))
        return {}

    # -- pages -----------------------------------------------------------------------

    def pages(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        root = self.rdict(self.trailer.get("Root"))
        top = self.resolve(root.get("Pages"))
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen: set[int] = set()
        stack: list[tuple[Any, dict[str, Any], int]] = [(top, {}, 0)]
        while stack:
            node, inherited, depth = stack.pop()
            node = self.resolve(node)
            if not isinstance(node, dict) or id(node) in seen or depth > 64:
                continue
            seen.add(id(node))
            resources = node.get("Resources")
            res = self.rdict(resources) if resources is not None else inherited
            kids = self.resolve(node.get("Kids"))
            if node.get("Type") == "Pages" or (
                node.get("Type") != "Page" and isinstance(kids, list)
            ):
                if isinstance(kids, list):
                    for kid in reversed(kids):
                        stack.append((kid, res, depth + 1))
                continue
            out.append((node, res))
            if len(out) > MAX_PAGES:
                raise ExtractionFailed(MSG_TOO_MANY_PAGES)
        if not out:  # a damaged tree: fall back to every page object in the file
            out = [(p, self._inherited_resources(p)) for p in self.orphan_pages()]
        return out


# ---------------------------------------------------------------------------------- text strings

_PDFDOC_HIGH = {
    0x18: "˘",
    0x19: "ˇ",
    0x1A: "ˆ",
    0x1B: "˙",
    0x1C: "˝",
    0x1D: "˛",
    0x1E: "˚",
    0x1F: "˜",
    0x80: "•",
    0x81: "†",
    0x82: "‡",
    0x83: "…",
    0x84: "—",
    0x85: "–",
    0x86: "ƒ",
    0x87: "⁄",
    0x88: "‹",
    0x89: "›",
    0x8A: "−",
    0x8B: "‰",
    0x8C: "„",
    0x8D: "“",
    0x8E: "”",
    0x8F: "‘",
    0x90: "’",
    0x91: "‚",
    0x92: "™",
    0x93: "ﬁ",
    0x94: "ﬂ",
    0x95: "Ł",
    0x96: "Œ",
    0x97: "Š",
    0x98: "Ÿ",
    0x99: "Ž",
    0x9A: "ı",
    0x9B: "ł",
    0x9C: "œ",
    0x9D: "š",
    0x9E: "ž",
    0xA0: "€",
}
_PDFDOC = [_PDFDOC_HIGH.get(i, chr(i)) for i in range(256)]


def decode_text_string(value: Any) -> str:
    """A PDF "text string": UTF-16BE with BOM, UTF-8 with BOM (PDF 2.0) or PDFDocEncoding."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    if value[:2] == b"\xfe\xff":
        text = value[2:].decode("utf-16-be", "replace")
    elif value[:2] == b"\xff\xfe":
        text = value[2:].decode("utf-16-le", "replace")
    elif value[:3] == b"\xef\xbb\xbf":
        text = value[3:].decode("utf-8", "replace")
    else:
        text = value.decode("latin-1").translate(_PDFDOC)
    return text.replace("\x00", "")


# ---------------------------------------------------------------------------------- fonts

_GLYPHS: dict[str, str] = {
    "space": " ",
    "exclam": "!",
    "quotedbl": '"',
    "numbersign": "#",
    "dollar": "$",
    "percent": "%",
    "ampersand": "&",
    "quotesingle": "'",
    "quoteright": "’",
    "parenleft": "(",
    "parenright": ")",
    "asterisk": "*",
    "plus": "+",
    "comma": ",",
    "hyphen": "-",
    "period": ".",
    "slash": "/",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "colon": ":",
    "semicolon": ";",
    "less": "<",
    "equal": "=",
    "greater": ">",
    "question": "?",
    "at": "@",
    "bracketleft": "[",
    "backslash": "\\",
    "bracketright": "]",
    "asciicircum": "^",
    "underscore": "_",
    "grave": "`",
    "quoteleft": "‘",
    "braceleft": "{",
    "bar": "|",
    "braceright": "}",
    "asciitilde": "~",
    "exclamdown": "¡",
    "cent": "¢",
    "sterling": "£",
    "fraction": "⁄",
    "yen": "¥",
    "florin": "ƒ",
    "section": "§",
    "currency": "¤",
    "quotedblleft": "“",
    "guillemotleft": "«",
    "guilsinglleft": "‹",
    "guilsinglright": "›",
    "fi": "fi",
    "fl": "fl",
    "ff": "ff",
    "ffi": "ffi",
    "ffl": "ffl",
    "endash": "–",
    "dagger": "†",
    "daggerdbl": "‡",
    "periodcentered": "·",
    "middot": "·",
    "paragraph": "¶",
    "bullet": "•",
    "quotesinglbase": "‚",
    "quotedblbase": "„",
    "quotedblright": "”",
    "guillemotright": "»",
    "ellipsis": "…",
    "perthousand": "‰",
    "questiondown": "¿",
    "acute": "´",
    "circumflex": "ˆ",
    "tilde": "˜",
    "macron": "¯",
    "breve": "˘",
    "dotaccent": "˙",
    "dieresis": "¨",
    "ring": "˚",
    "cedilla": "¸",
    "hungarumlaut": "˝",
    "ogonek": "˛",
    "caron": "ˇ",
    "emdash": "—",
    "AE": "Æ",
    "ae": "æ",
    "ordfeminine": "ª",
    "ordmasculine": "º",
    "Lslash": "Ł",
    "lslash": "ł",
    "Oslash": "Ø",
    "oslash": "ø",
    "OE": "Œ",
    "oe": "œ",
    "dotlessi": "ı",
    "germandbls": "ß",
    "Eth": "Ð",
    "eth": "ð",
    "Thorn": "Þ",
    "thorn": "þ",
    "trademark": "™",
    "copyright": "©",
    "registered": "®",
    "degree": "°",
    "plusminus": "±",
    "multiply": "×",
    "divide": "÷",
    "mu": "µ",
    "brokenbar": "¦",
    "logicalnot": "¬",
    "sfthyphen": "-",
    "minus": "−",
    "Euro": "€",
    "euro": "€",
    "nbspace": " ",
    "nonbreakingspace": " ",
    "onehalf": "½",
    "onequarter": "¼",
    "threequarters": "¾",
    "onesuperior": "¹",
    "twosuperior": "²",
    "threesuperior": "³",
    "dotlessj": "ȷ",
    "Delta": "∆",
    "Omega": "Ω",
    "pi": "π",
    "mu1": "µ",
    "arrowright": "→",
    "arrowleft": "←",
    "checkmark": "✓",
    "lozenge": "◊",
    "notequal": "≠",
    "lessequal": "≤",
    "greaterequal": "≥",
    "infinity": "∞",
    "summation": "∑",
    "product": "∏",
    "radical": "√",
    "integral": "∫",
    "partialdiff": "∂",
    "approxequal": "≈",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "lambda": "λ",
    "sigma": "σ",
    "theta": "θ",
    "tab": "\t",
    "circlecopyrt": "©",
    "angbracketleft": "⟨",
    "angbracketright": "⟩",
    "dotmath": "⋅",
    "similar": "∼",
    "asteriskmath": "∗",
    "element": "∈",
    "arrowdblright": "⇒",
    "minusplus": "∓",
    "openbullet": "◦",
    "ij": "ĳ",
    "IJ": "Ĳ",
    "napostrophe": "ŉ",
}
_ACCENTS = {
    "grave": "GRAVE",
    "acute": "ACUTE",
    "circumflex": "CIRCUMFLEX",
    "tilde": "TILDE",
    "dieresis": "DIAERESIS",
    "ring": "RING ABOVE",
    "cedilla": "CEDILLA",
    "caron": "CARON",
    "macron": "MACRON",
    "breve": "BREVE",
    "ogonek": "OGONEK",
    "dotaccent": "DOT ABOVE",
    "hungarumlaut": "DOUBLE ACUTE",
    "commaaccent": "COMMA BELOW",
}
_ACCENTED = re.compile(r"([A-Za-z])(" + "|".join(_ACCENTS) + r")$")
_UNI = re.compile(r"uni((?:[0-9A-Fa-f]{4})+)$")
_U = re.compile(r"u([0-9A-Fa-f]{4,6})$")


def glyph_to_unicode(name: str) -> str:
    """Adobe glyph name → text ("" when unknown): table, uniXXXX, uXXXX, f_i, a.sc, accents."""
    hit = _GLYPHS.get(name)
    if hit is not None:
        return hit
    if len(name) == 1 and name.isascii() and name.isalpha():
        return name
    if "." in name and not name.startswith("."):
        return glyph_to_unicode(name.split(".", 1)[0])
    if "_" in name:
        return "".join(glyph_to_unicode(part) for part in name.split("_"))
    m = _UNI.match(name)
    if m:
        hexes = m.group(1)
        codes = [int(hexes[i : i + 4], 16) for i in range(0, len(hexes), 4)]
        return "".join(chr(c) for c in codes if not 0xD800 <= c <= 0xDFFF)
    m = _U.match(name)
    if m:
        code = int(m.group(1), 16)
        return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""
    m = _ACCENTED.match(name)
    if m:
        letter = m.group(1)
        case = "CAPITAL" if letter.isupper() else "SMALL"
        try:
            return unicodedata.lookup(
                f"LATIN {case} LETTER {letter.upper()} WITH {_ACCENTS[m.group(2)]}"
            )
        except KeyError:
            return letter
    return ""


def _charmap(codec: str) -> list[str]:
    out = []
    for i in range(256):
        try:
            out.append(bytes((i,)).decode(codec) if i >= 32 else "")
        except UnicodeDecodeError:
            out.append("")
    return out


_WINANSI = _charmap("cp1252")
_WINANSI[0xA0] = " "
_WINANSI[0xAD] = "-"
_WINANSI[0x7F] = "•"
_MACROMAN = _charmap("mac_roman")
_MACROMAN[0xCA] = " "
_STANDARD = [chr(i) if 32 <= i < 127 else "" for i in range(256)]
_STANDARD[0x27], _STANDARD[0x60] = "’", "‘"
for _code, _char in zip(
    [
        0xA1,
        0xA2,
        0xA3,
        0xA4,
        0xA5,
        0xA6,
        0xA7,
        0xA8,
        0xA9,
        0xAA,
        0xAB,
        0xAC,
        0xAD,
        0xAE,
        0xAF,
        0xB1,
        0xB2,
        0xB3,
        0xB4,
        0xB6,
        0xB7,
        0xB8,
        0xB9,
        0xBA,
        0xBB,
        0xBC,
        0xBD,
        0xBF,
        0xC1,
        0xC2,
        0xC3,
        0xC4,
        0xC5,
        0xC6,
        0xC7,
        0xC8,
        0xCA,
        0xCB,
        0xCD,
        0xCE,
        0xCF,
        0xD0,
        0xE1,
        0xE3,
        0xE8,
        0xE9,
        0xEA,
        0xEB,
        0xF1,
        0xF5,
        0xF8,
        0xF9,
        0xFA,
        0xFB,
    ],
    "¡¢£⁄¥ƒ§¤'“«‹›ﬁﬂ–†‡·¶•‚„”»…‰¿`´ˆ˜¯˘˙¨˚¸˝˛ˇ—ÆªŁØŒºæıłøœß",
    strict=True,
):
    _STANDARD[_code] = _char
_ENCODINGS = {
    "WinAnsiEncoding": _WINANSI,
    "MacRomanEncoding": _MACROMAN,
    "StandardEncoding": _STANDARD,
    "PDFDocEncoding": _PDFDOC,
    "MacExpertEncoding": _STANDARD,
}
# Helvetica's AFM widths for codes 32..126 (used when a standard-14 font has no /Widths).
_HELVETICA = [
    int(w)
    for w in [
        "278",
        "278",
        "355",
        "556",
        "556",
        "889",
        "667",
        "222",
        "333",
        "333",
        "389",
        "584",
        "278",
        "333",
        "278",
        "278",
        "556",
        "556",
        "556",
        "556",
        "556",
        "556",
        "556",
        "556",
        "556",
        "556",
        "278",
        "278",
        "584",
        "584",
        "584",
        "556",
        "1015",
        "667",
        "667",
        "722",
        "722",
        "667",
        "611",
        "778",
        "722",
        "278",
        "500",
        "667",
        "556",
        "833",
        "722",
        "778",
        "667",
        "778",
        "722",
        "667",
        "611",
        "722",
        "667",
        "944",
        "667",
        "667",
        "611",
        "278",
        "278",
        "278",
        "469",
        "556",
        "222",
        "556",
        "556",
        "500",
        "556",
        "556",
        "278",
        "556",
        "556",
        "222",
        "222",
        "500",
        "222",
        "833",
        "556",
        "556",
        "556",
        "556",
        "333",
        "500",
        "278",
        "556",
        "500",
        "722",
        "500",
        "500",
        "500",
        "334",
        "260",
        "334",
        "584",
    ]
]


class _Font:
    __slots__ = (
        "cmap",
        "code_len",
        "default_width",
        "ranges",
        "scale",
        "simple",
        "table",
        "widths",
        "wmap",
    )

    def __init__(self) -> None:
        self.simple = True
        self.table: list[str] = _STANDARD
        self.widths: list[float] = [500.0] * 256
        self.scale = 0.001
        self.cmap: dict[int, str] = {}
        self.wmap: dict[int, float] = {}
        self.default_width = 1000.0
        self.code_len = 2
        self.ranges: list[tuple[int, int, int]] = []  # (length, lo, hi) for mixed-length codes

    def decode(self, s: bytes) -> tuple[str, float, int, int]:
        """→ (text, summed glyph widths in glyph units, number of codes, number of 0x20 bytes)."""
        if self.simple:
            return (
                s.decode("latin-1").translate(self.table),
                sum(map(self.widths.__getitem__, s)),
                len(s),
                s.count(32),
            )
        cmap, wmap, dw = self.cmap, self.wmap, self.default_width
        if self.code_len == 2 and not self.ranges:
            n = len(s) // 2
            codes: Any = struct.unpack(f">{n}H", s[: 2 * n])
        elif self.code_len == 1 and not self.ranges:
            codes = s
        else:
            codes = self._split(s)
        text = "".join([cmap.get(c, "") for c in codes])
        return text, sum([wmap.get(c, dw) for c in codes]), len(codes), 0

    def _split(self, s: bytes) -> list[int]:
        codes: list[int] = []
        i, n = 0, len(s)
        while i < n:
            for length, lo, hi in self.ranges:
                if i + length <= n and lo <= int.from_bytes(s[i : i + length], "big") <= hi:
                    codes.append(int.from_bytes(s[i : i + length], "big"))
                    i += length
                    break
            else:
                codes.append(s[i])
                i += 1
        return codes


def _utf16(value: bytes) -> str:
    if len(value) % 2:
        value = b"\x00" + value
    return value.decode("utf-16-be", "replace").replace("\x00", "")


def _parse_cmap(data: bytes) -> tuple[dict[int, str], list[tuple[int, int, int]]]:
    mapping: dict[int, str] = {}
    ranges: list[tuple[int, int, int]] = []
    budget = 1 << 17
    for op, args in _iter_ops(data):
        if op == b"endcodespacerange":
            for i in range(0, len(args) - 1, 2):
                lo, hi = args[i], args[i + 1]
                if isinstance(lo, bytes) and isinstance(hi, bytes) and lo:
                    ranges.append((len(lo), int.from_bytes(lo, "big"), int.from_bytes(hi, "big")))
        elif op == b"endbfchar":
            for i in range(0, len(args) - 1, 2):
                src, dst = args[i], args[i + 1]
                if isinstance(src, bytes):
                    if isinstance(dst, bytes):
                        mapping[int.from_bytes(src, "big")] = _utf16(dst)
                    elif isinstance(dst, str):
                        mapping[int.from_bytes(src, "big")] = glyph_to_unicode(dst)
        elif op == b"endbfrange":
            for i in range(0, len(args) - 2, 3):
                lo_b, hi_b, dst = args[i], args[i + 1], args[i + 2]
                if not (isinstance(lo_b, bytes) and isinstance(hi_b, bytes)):
                    continue
                lo, hi = int.from_bytes(lo_b, "big"), int.from_bytes(hi_b, "big")
                count = min(hi - lo + 1, budget)
                if count <= 0:
                    continue
                budget -= count
                if isinstance(dst, list):
                    for j, item in enumerate(dst[:count]):
                        if isinstance(item, bytes):
                            mapping[lo + j] = _utf16(item)
                elif isinstance(dst, bytes) and dst:
                    base = _utf16(dst)
                    if not base:
                        continue
                    head, last = base[:-1], ord(base[-1])
                    for j in range(count):
                        if last + j <= 0x10FFFF:
                            mapping[lo + j] = head + chr(last + j)
            if budget <= 0:
                break
    return mapping, ranges


# ---------------------------------------------------------------------------------- pages → text

_T1_ENCODING = re.compile(rb"dup[ \t\r\n]+(\d{1,3})[ \t\r\n]*/(" + _REGULAR + rb"+)[ \t\r\n]+put")
_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_TEXT_OPS = frozenset(
    [*b"Tj TJ ' \" Td TD Tm T* Tf BT ET q Q cm TL Tc Tw Tz Do BI".split(), _INLINE_IMAGE]
)
_CLEAN = {
    0: None,
    0xFB00: "ff",
    0xFB01: "fi",
    0xFB02: "fl",
    0xFB03: "ffi",
    0xFB04: "ffl",
    0xFB05: "st",
    0xFB06: "st",
    0xA0: " ",
    0xAD: None,
    0xFEFF: None,
    0x0D: "\n",
}
_CLEAN.update({c: None for c in range(32) if c not in (9, 10, 13)})
_TRAILING_BLANKS = re.compile(r"[ \t]+\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _mul(
    m: tuple[float, ...], n: tuple[float, ...]
) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return (
        a * A + b * C,
        a * B + b * D,
        c * A + d * C,
        c * B + d * D,
        e * A + f * C + E,
        e * B + f * D + F,
    )


def _matrix(args: list[Any]) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = (float(x) for x in args[-6:])
    return (a, b, c, d, e, f)


class _Extractor:
    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.fonts: dict[int, _Font] = {}
        self.ops = 0
        self.images = 0
        self.glyphs = 0
        self.parts: list[str] = []
        self.last: tuple[float, float, float, float, float] | None = None  # x, y, ux, uy, size

    # -- fonts ------------------------------------------------------------------------

    def font(self, ref: Any) -> _Font:
        doc = self.doc
        fdict = doc.rdict(ref)
        key = id(fdict)
        font = self.fonts.get(key)
        if font is None:
            try:
                font = self._build_font(fdict)
            except (_Corrupt, _Unsupported, ValueError, TypeError, IndexError, KeyError):
                font = _Font()
            self.fonts[key] = font
        return font

    def _build_font(self, fdict: dict[str, Any]) -> _Font:
        doc = self.doc
        font = _Font()
        subtype = fdict.get("Subtype")
        tounicode = doc.resolve(fdict.get("ToUnicode"))
        umap: dict[int, str] = {}
        ranges: list[tuple[int, int, int]] = []
        if isinstance(tounicode, Stream):
            with contextlib.suppress(_Unsupported):
                umap, ranges = _parse_cmap(doc.decode(tounicode))
        if subtype == "Type0":
            font.simple = False
            encoding = doc.resolve(fdict.get("Encoding"))
            if isinstance(encoding, Stream):
                try:
                    _, enc_ranges = _parse_cmap(doc.decode(encoding))
                    ranges = enc_ranges or ranges
                except _Unsupported:
                    pass
            lengths = {r[0] for r in ranges}
            if len(lengths) == 1:
                font.code_len = lengths.pop()
            elif len(lengths) > 1:
                font.ranges = sorted(ranges)
            if (
                not umap
                and isinstance(encoding, str)
                and ("UCS2" in encoding or "UTF16" in encoding)
            ):
                umap = _CodepointMap()
            font.cmap = umap
            descendants = doc.resolve(fdict.get("DescendantFonts"))
            cid = doc.rdict(
                descendants[0] if isinstance(descendants, list) and descendants else None
            )
            font.default_width = _num(doc.resolve(cid.get("DW")), 1000.0)
            warr = doc.resolve(cid.get("W"))
            if isinstance(warr, list):
                self._cid_widths(font, warr)
            return font
        # Simple fonts: Type1, MMType1, TrueType, Type3.
        encoding = doc.resolve(fdict.get("Encoding"))
        base_font = fdict.get("BaseFont")
        base_name: str = base_font if isinstance(base_font, str) else ""
        default = _WINANSI if subtype == "TrueType" else _STANDARD
        descriptor = doc.rdict(fdict.get("FontDescriptor"))
        if subtype in ("Type1", "MMType1") and not (
            isinstance(encoding, str) or (isinstance(encoding, dict) and "BaseEncoding" in encoding)
        ):
            builtin = self._type1_encoding(descriptor)
            if builtin:
                default = list(default)
                for code, text in builtin.items():
                    default[code] = text
        table = list(default)
        if isinstance(encoding, str):
            table = list(_ENCODINGS.get(encoding, default))
        elif isinstance(encoding, dict):
            base = encoding.get("BaseEncoding")
            table = list(_ENCODINGS.get(base, default) if isinstance(base, str) else default)
            diffs = doc.resolve(encoding.get("Differences"))
            if isinstance(diffs, list):
                code = 0
                for item in diffs:
                    item = doc.resolve(item)
                    if type(item) is int:
                        code = item
                    elif isinstance(item, str):
                        if 0 <= code < 256:
                            table[code] = glyph_to_unicode(item)
                        code += 1
        for code, text in umap.items():
            if 0 <= code < 256:
                table[code] = text
        font.table = table
        # Widths.
        widths = doc.resolve(fdict.get("Widths"))
        missing = _num(doc.resolve(descriptor.get("MissingWidth")), 0.0)
        if isinstance(widths, list):
            first = _int(doc.resolve(fdict.get("FirstChar")), 0)
            wl = [missing or 500.0] * 256
            for i, w in enumerate(widths):
                if 0 <= first + i < 256:
                    wl[first + i] = _num(doc.resolve(w), wl[first + i])
            font.widths = wl
        elif "Courier" in base_name:
            font.widths = [600.0] * 256
        else:
            wl = [missing or 556.0] * 256
            wl[32:127] = [float(w) for w in _HELVETICA]
            font.widths = wl
        if subtype == "Type3":
            fm = doc.resolve(fdict.get("FontMatrix"))
            if isinstance(fm, list) and fm:
                font.scale = _num(fm[0], 0.001)
        return font

    def _type1_encoding(self, descriptor: dict[str, Any]) -> dict[int, str]:
        """The built-in encoding of an embedded Type 1 font (`dup 58 /period put` lines): what
        TeX's math and symbol fonts rely on, since they carry no /Encoding or ToUnicode."""
        program = self.doc.resolve(descriptor.get("FontFile"))
        if not isinstance(program, Stream):
            return {}
        try:
            data = self.doc.decode(program)
        except _Unsupported:
            return {}
        clear = _int(program.attrs.get("Length1"), 0)
        end = data.find(b"eexec")
        head = data[: clear if 0 < clear <= len(data) else (end if end > 0 else 65536)]
        if b"/Encoding" not in head or b"/Encoding StandardEncoding" in head:
            return {}
        return {
            int(code): glyph_to_unicode(name.decode("latin-1"))
            for code, name in _T1_ENCODING.findall(head)
            if int(code) < 256
        }

    def _cid_widths(self, font: _Font, warr: list[Any]) -> None:
        doc = self.doc
        i, n, budget = 0, len(warr), 1 << 16
        while i + 1 < n and budget > 0:
            first = doc.resolve(warr[i])
            nxt = doc.resolve(warr[i + 1])
            if type(first) is not int:
                break
            if isinstance(nxt, list):
                for j, w in enumerate(nxt):
                    font.wmap[first + j] = _num(w, font.default_width)
                budget -= len(nxt)
                i += 2
            elif i + 2 < n:
                last, w = _int(nxt, first), _num(doc.resolve(warr[i + 2]), font.default_width)
                for c in range(first, min(last, first + budget) + 1):
                    font.wmap[c] = w
                budget -= max(0, last - first + 1)
                i += 3
            else:
                break

    # -- content ----------------------------------------------------------------------

    def page_text(self, page: dict[str, Any], resources: dict[str, Any]) -> str:
        doc = self.doc
        contents = doc.resolve(page.get("Contents"))
        streams = contents if isinstance(contents, list) else [contents]
        chunks: list[bytes] = []
        for s in streams[:4096]:
            s = doc.resolve(s)
            if isinstance(s, Stream):
                try:
                    chunks.append(doc.decode(s))
                except (_Unsupported, ValueError):
                    continue
        self.parts = []
        self.last = None
        # On damage, keep the text read before it.
        with contextlib.suppress(_Corrupt, RecursionError):
            self._run(b"\n".join(chunks), resources, _IDENTITY, 0, set())
        text = "".join(self.parts).translate(_CLEAN)
        text = _MANY_NEWLINES.sub("\n\n", _TRAILING_BLANKS.sub("\n", text))
        return text.strip()

    def _emit(self, text: str, x: float, y: float, ux: float, uy: float, size: float) -> None:
        last = self.last
        parts = self.parts
        if last is not None and parts:
            lx, ly, lux, luy, lsize = last
            dx, dy = x - lx, y - ly
            along = dx * lux + dy * luy
            across = dy * lux - dx * luy  # positive = up, in the previous run's frame
            h = max(size, lsize, 1e-6)
            prev = parts[-1][-1:]
            if abs(across) > 0.5 * h:
                if across < -2.1 * h or across > 1.2 * h:
                    parts.append("\n\n")
                elif prev != "\n":
                    parts.append("\n")
            elif (along > 0.15 * h or along < -h) and not prev.isspace() and not text[:1].isspace():
                parts.append(" ")
        parts.append(text)

    def _run(
        self,
        content: bytes,
        resources: dict[str, Any],
        ctm: tuple[float, ...],
        depth: int,
        active: set[int],
    ) -> None:
        doc = self.doc
        fonts = doc.rdict(resources.get("Font"))
        xobjects = doc.rdict(resources.get("XObject"))
        font = _Font()
        fs, tc, tw, th, tl = 1.0, 0.0, 0.0, 1.0, 0.0
        tm = tlm = _IDENTITY
        saved: list[tuple[Any, ...]] = []
        text_ops = _TEXT_OPS
        emit = self._emit

        for op, args in _iter_ops(content):
            self.ops += 1
            if op not in text_ops:
                continue
            if self.ops > MAX_OPERATORS:
                raise ExtractionFailed(MSG_TOO_COMPLEX)
            try:
                if op == b"Tj" or op == b"'" or op == b'"' or op == b"TJ":
                    if op == b"'" or op == b'"':
                        if op == b'"' and len(args) >= 3:
                            tw, tc = float(args[-3]), float(args[-2])
                        tlm = (
                            tlm[0],
                            tlm[1],
                            tlm[2],
                            tlm[3],
                            tlm[4] - tl * tlm[2],
                            tlm[5] - tl * tlm[3],
                        )
                        tm = tlm
                    items = args[-1] if op == b"TJ" else args[-1:]
                    if not isinstance(items, list):
                        continue
                    # One placement per operator: pieces of a TJ are glued, with a space where
                    # the displacement is wider than 0.15 em.
                    buf: list[str] = []
                    total = 0.0  # advance along the baseline, in text space
                    first_at = 0.0
                    pending_space = False
                    for item in items:
                        if type(item) is bytes:
                            text, w, n, nsp = font.decode(item)
                            self.glyphs += n
                            if text:
                                if not buf:
                                    first_at = total
                                elif (
                                    pending_space
                                    and not buf[-1][-1:].isspace()
                                    and not text[:1].isspace()
                                ):
                                    buf.append(" ")
                                buf.append(text)
                                pending_space = False
                            total += (w * font.scale * fs + tc * n + tw * nsp) * th
                        elif type(item) in (int, float):
                            adv = -item / 1000.0
                            total += adv * fs * th
                            if adv > 0.15:
                                pending_space = True
                    if buf:
                        a, b, c, d, e, f = _mul(tm, ctm)
                        norm = hypot(a, b) or 1.0
                        ux, uy = a / norm, b / norm
                        size = abs(fs) * (hypot(c, d) or 1.0)
                        emit("".join(buf), e + first_at * a, f + first_at * b, ux, uy, size)
                        self.last = (e + total * a, f + total * b, ux, uy, size)
                    tm = (tm[0], tm[1], tm[2], tm[3], tm[4] + total * tm[0], tm[5] + total * tm[1])
                elif op == b"Td" or op == b"TD":
                    tx, ty = float(args[-2]), float(args[-1])
                    if op == b"TD":
                        tl = -ty
                    tlm = (
                        tlm[0],
                        tlm[1],
                        tlm[2],
                        tlm[3],
                        tx * tlm[0] + ty * tlm[2] + tlm[4],
                        tx * tlm[1] + ty * tlm[3] + tlm[5],
                    )
                    tm = tlm
                elif op == b"Tm":
                    tm = tlm = _matrix(args)
                elif op == b"T*":
                    tlm = (
                        tlm[0],
                        tlm[1],
                        tlm[2],
                        tlm[3],
                        tlm[4] - tl * tlm[2],
                        tlm[5] - tl * tlm[3],
                    )
                    tm = tlm
                elif op == b"Tf":
                    fs = float(args[-1])
                    name = args[-2]
                    font = self.font(fonts.get(name)) if isinstance(name, str) else _Font()
                elif op == b"BT":
                    tm = tlm = _IDENTITY
                elif op == b"ET":
                    pass
                elif op == b"q":
                    if len(saved) < 256:
                        saved.append((ctm, font, fs, tc, tw, th, tl))
                elif op == b"Q":
                    if saved:
                        ctm, font, fs, tc, tw, th, tl = saved.pop()
                elif op == b"cm":
                    ctm = _mul(_matrix(args), ctm)
                elif op == b"TL":
                    tl = float(args[-1])
                elif op == b"Tc":
                    tc = float(args[-1])
                elif op == b"Tw":
                    tw = float(args[-1])
                elif op == b"Tz":
                    th = float(args[-1]) / 100.0
                elif op == b"Do":
                    self._xobject(xobjects.get(args[-1]), resources, ctm, depth, active)
                elif op == _INLINE_IMAGE:
                    self.images += 1
            except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError):
                continue

    def _xobject(
        self,
        ref: Any,
        resources: dict[str, Any],
        ctm: tuple[float, ...],
        depth: int,
        active: set[int],
    ) -> None:
        doc = self.doc
        xobj = doc.resolve(ref)
        if not isinstance(xobj, Stream):
            return
        subtype = xobj.attrs.get("Subtype")
        if subtype == "Image":
            self.images += 1
            return
        if subtype != "Form" or depth >= MAX_FORM_DEPTH or id(xobj) in active:
            return
        try:
            content = doc.decode(xobj)
        except _Unsupported:
            return
        matrix = doc.resolve(xobj.attrs.get("Matrix"))
        if (
            isinstance(matrix, list)
            and len(matrix) == 6
            and all(type(v) in (int, float) for v in matrix)
        ):
            ctm = _mul(_matrix(matrix), ctm)
        own = xobj.attrs.get("Resources")
        res = doc.rdict(own) if own is not None else resources
        active.add(id(xobj))
        try:
            self._run(content, res, ctm, depth + 1, active)
        finally:
            active.discard(id(xobj))


class _CodepointMap(dict):
    """For Uni*-UCS2/UTF16 predefined CMaps: the code *is* the (BMP) code point."""

    def get(self, key: int, default: Any = None) -> Any:
        return chr(key) if 0 <= key < 0xD800 or 0xE000 <= key <= 0xFFFF else default


# ---------------------------------------------------------------------------------- outline


def _headings(
    doc: _Document, page_index: dict[int, int], pages: list[Page], text: str
) -> list[Heading]:
    root = doc.rdict(doc.trailer.get("Root"))
    outlines = doc.rdict(root.get("Outlines"))
    named = doc.rdict(root.get("Dests"))
    out: list[Heading] = []
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(outlines.get("First"), 1)]
    while stack and len(seen) < MAX_OUTLINE_ITEMS:
        ref, level = stack.pop()
        item = doc.resolve(ref)
        if not isinstance(item, dict) or id(item) in seen:
            continue
        seen.add(id(item))
        stack.append((item.get("Next"), level))
        if level < 8:
            stack.append((item.get("First"), level + 1))
        title = " ".join(decode_text_string(doc.resolve(item.get("Title"))).split())
        dest = doc.resolve(item.get("Dest"))
        if dest is None:
            action = doc.rdict(item.get("A"))
            dest = doc.resolve(action.get("D")) if action.get("S") == "GoTo" else None
        if isinstance(dest, (bytes, str)):
            key = dest if isinstance(dest, str) else dest.decode("latin-1")
            dest = doc.resolve(named.get(key))
        if isinstance(dest, dict):
            dest = doc.resolve(dest.get("D"))
        if not title or not isinstance(dest, list) or not dest:
            continue
        target = doc.resolve(dest[0])
        index = page_index.get(id(target)) if isinstance(target, dict) else None
        if index is None:
            continue
        page = pages[index]
        found = text.find(title, page.char_start, page.char_end)
        if found < 0:
            found = text.lower().find(title.lower(), page.char_start, page.char_end)
        out.append(Heading(found if found >= 0 else page.char_start, min(level, 6), title))
    out.sort(key=lambda h: h.char_start)
    return out


# ---------------------------------------------------------------------------------- entry point


def extract_pdf(data: bytes) -> Extracted:
    """PDF bytes → `Extracted` (text, exact page spans, Info title, outline headings)."""
    try:
        return _extract(bytes(data))
    except ExtractionFailed:
        raise
    except _Corrupt as exc:
        raise ExtractionFailed(MSG_CORRUPT) from exc
    except (RecursionError, MemoryError) as exc:
        raise ExtractionFailed(MSG_TOO_COMPLEX) from exc
    except Exception as exc:  # the boundary: nothing but ExtractionFailed leaves this module
        raise ExtractionFailed(MSG_UNREADABLE) from exc


def _extract(data: bytes) -> Extracted:
    header = data.find(b"%PDF-", 0, 1024)
    if header < 0:
        raise ExtractionFailed(MSG_NOT_PDF)
    if header:
        data = data[header:]  # junk before the header shifts every offset
    doc = _Document(data)
    doc.load_structure()
    if doc.trailer.get("Encrypt") is not None:
        raise ExtractionFailed(MSG_ENCRYPTED)
    if not doc._root_ok() and not doc.recovered:
        raise ExtractionFailed(MSG_CORRUPT)
    pages = doc.pages()
    if not pages:
        raise ExtractionFailed(MSG_CORRUPT if doc.recovered else MSG_NO_PAGES)

    extractor = _Extractor(doc)
    texts: list[str] = []
    for page, resources in pages:
        try:
            texts.append(extractor.page_text(page, resources))
        except (
            _Corrupt,
            _Unsupported,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            AttributeError,
        ):
            texts.append("".join(getattr(extractor, "parts", [])).translate(_CLEAN).strip())

    spans: list[Page] = []
    pos = 0
    for number, page_text in enumerate(texts, 1):
        if number > 1:
            pos += len(PAGE_SEPARATOR)
        spans.append(Page(number, pos, pos + len(page_text)))
        pos += len(page_text)
    text = PAGE_SEPARATOR.join(texts)
    if not text.strip():
        if extractor.images:
            raise ExtractionFailed(MSG_IMAGES_ONLY)
        if extractor.glyphs:
            raise ExtractionFailed(MSG_NO_UNICODE)
        raise ExtractionFailed(MSG_NO_TEXT)

    info = doc.rdict(doc.trailer.get("Info"))
    title = " ".join(decode_text_string(doc.resolve(info.get("Title"))).split()) or None
    try:
        page_index = {id(page): i for i, (page, _) in enumerate(pages)}
        headings = _headings(doc, page_index, spans, text)
    except (_Corrupt, ValueError, TypeError, KeyError, IndexError, AttributeError):
        headings = []
    return Extracted(text=text, pages=spans, headings=headings, title=title)
