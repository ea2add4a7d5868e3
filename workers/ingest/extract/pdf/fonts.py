"""Fonts → text and widths: ToUnicode CMaps (bfchar, bfrange incl. the array form, codespace
ranges), simple fonts (encodings, /Differences, built-in Type 1 encodings, /Widths), Type0
fonts (1-byte, 2-byte and mixed-length codes, CID widths) and Type3 font matrices."""

from __future__ import annotations

import contextlib
import re
import struct
from typing import Any

from ingest.extract.pdf.document import Document
from ingest.extract.pdf.encodings import (
    ENCODINGS,
    HELVETICA_WIDTHS,
    STANDARD,
    WINANSI,
    glyph_to_unicode,
)
from ingest.extract.pdf.errors import Unsupported
from ingest.extract.pdf.syntax import REGULAR, Stream, as_int, as_num, iter_ops


class Font:
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
        self.table: list[str] = STANDARD
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
    for op, args in iter_ops(data):
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


_T1_ENCODING = re.compile(rb"dup[ \t\r\n]+(\d{1,3})[ \t\r\n]*/(" + REGULAR + rb"+)[ \t\r\n]+put")


class _CodepointMap(dict):
    """For Uni*-UCS2/UTF16 predefined CMaps: the code *is* the (BMP) code point."""

    def get(self, key: int, default: Any = None) -> Any:
        return chr(key) if 0 <= key < 0xD800 or 0xE000 <= key <= 0xFFFF else default


def build_font(doc: Document, fdict: dict[str, Any]) -> Font:
    """A font dictionary → how to turn its codes into text and widths."""
    font = Font()
    subtype = fdict.get("Subtype")
    tounicode = doc.resolve(fdict.get("ToUnicode"))
    umap: dict[int, str] = {}
    ranges: list[tuple[int, int, int]] = []
    if isinstance(tounicode, Stream):
        with contextlib.suppress(Unsupported):
            umap, ranges = _parse_cmap(doc.decode(tounicode))
    if subtype == "Type0":
        font.simple = False
        encoding = doc.resolve(fdict.get("Encoding"))
        if isinstance(encoding, Stream):
            try:
                _, enc_ranges = _parse_cmap(doc.decode(encoding))
                ranges = enc_ranges or ranges
            except Unsupported:
                pass
        lengths = {r[0] for r in ranges}
        if len(lengths) == 1:
            font.code_len = lengths.pop()
        elif len(lengths) > 1:
            font.ranges = sorted(ranges)
        if not umap and isinstance(encoding, str) and ("UCS2" in encoding or "UTF16" in encoding):
            umap = _CodepointMap()
        font.cmap = umap
        descendants = doc.resolve(fdict.get("DescendantFonts"))
        cid = doc.rdict(descendants[0] if isinstance(descendants, list) and descendants else None)
        font.default_width = as_num(doc.resolve(cid.get("DW")), 1000.0)
        warr = doc.resolve(cid.get("W"))
        if isinstance(warr, list):
            _cid_widths(doc, font, warr)
        return font
    # Simple fonts: Type1, MMType1, TrueType, Type3.
    encoding = doc.resolve(fdict.get("Encoding"))
    base_font = fdict.get("BaseFont")
    base_name: str = base_font if isinstance(base_font, str) else ""
    default = WINANSI if subtype == "TrueType" else STANDARD
    descriptor = doc.rdict(fdict.get("FontDescriptor"))
    if subtype in ("Type1", "MMType1") and not (
        isinstance(encoding, str) or (isinstance(encoding, dict) and "BaseEncoding" in encoding)
    ):
        builtin = _type1_encoding(doc, descriptor)
        if builtin:
            default = list(default)
            for code, text in builtin.items():
                default[code] = text
    table = list(default)
    if isinstance(encoding, str):
        table = list(ENCODINGS.get(encoding, default))
    elif isinstance(encoding, dict):
        base = encoding.get("BaseEncoding")
        table = list(ENCODINGS.get(base, default) if isinstance(base, str) else default)
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
    missing = as_num(doc.resolve(descriptor.get("MissingWidth")), 0.0)
    if isinstance(widths, list):
        first = as_int(doc.resolve(fdict.get("FirstChar")), 0)
        wl = [missing or 500.0] * 256
        for i, w in enumerate(widths):
            if 0 <= first + i < 256:
                wl[first + i] = as_num(doc.resolve(w), wl[first + i])
        font.widths = wl
    elif "Courier" in base_name:
        font.widths = [600.0] * 256
    else:
        wl = [missing or 556.0] * 256
        wl[32:127] = [float(w) for w in HELVETICA_WIDTHS]
        font.widths = wl
    if subtype == "Type3":
        fm = doc.resolve(fdict.get("FontMatrix"))
        if isinstance(fm, list) and fm:
            font.scale = as_num(fm[0], 0.001)
    return font


def _type1_encoding(doc: Document, descriptor: dict[str, Any]) -> dict[int, str]:
    """The built-in encoding of an embedded Type 1 font (`dup 58 /period put` lines): what
    TeX's math and symbol fonts rely on, since they carry no /Encoding or ToUnicode."""
    program = doc.resolve(descriptor.get("FontFile"))
    if not isinstance(program, Stream):
        return {}
    try:
        data = doc.decode(program)
    except Unsupported:
        return {}
    clear = as_int(program.attrs.get("Length1"), 0)
    end = data.find(b"eexec")
    head = data[: clear if 0 < clear <= len(data) else (end if end > 0 else 65536)]
    if b"/Encoding" not in head or b"/Encoding StandardEncoding" in head:
        return {}
    return {
        int(code): glyph_to_unicode(name.decode("latin-1"))
        for code, name in _T1_ENCODING.findall(head)
        if int(code) < 256
    }


def _cid_widths(doc: Document, font: Font, warr: list[Any]) -> None:
    i, n, budget = 0, len(warr), 1 << 16
    while i + 1 < n and budget > 0:
        first = doc.resolve(warr[i])
        nxt = doc.resolve(warr[i + 1])
        if type(first) is not int:
            break
        if isinstance(nxt, list):
            for j, w in enumerate(nxt):
                font.wmap[first + j] = as_num(w, font.default_width)
            budget -= len(nxt)
            i += 2
        elif i + 2 < n:
            last, w = as_int(nxt, first), as_num(doc.resolve(warr[i + 2]), font.default_width)
            for c in range(first, min(last, first + budget) + 1):
                font.wmap[c] = w
            budget -= max(0, last - first + 1)
            i += 3
        else:
            break
