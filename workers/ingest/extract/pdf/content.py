"""Content streams → page text: the text-state interpreter (``q Q cm BT ET Tf Td TD Tm T* TL
Tc Tw Tz Tj TJ ' "``, Form XObjects) and the layout heuristic that places spaces, line breaks
and block breaks between text runs (described in the package docstring)."""

from __future__ import annotations

import contextlib
import re
from math import hypot
from typing import Any

from ingest.extract.base import ExtractionFailed
from ingest.extract.pdf.document import Document
from ingest.extract.pdf.errors import (
    MAX_FORM_DEPTH,
    MAX_OPERATORS,
    MSG_TOO_COMPLEX,
    Corrupt,
    Unsupported,
)
from ingest.extract.pdf.fonts import Font, build_font
from ingest.extract.pdf.syntax import INLINE_IMAGE, Stream, iter_ops

_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_TEXT_OPS = frozenset(
    [*b"Tj TJ ' \" Td TD Tm T* Tf BT ET q Q cm TL Tc Tw Tz Do BI".split(), INLINE_IMAGE]
)
CLEAN = {
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
CLEAN.update({c: None for c in range(32) if c not in (9, 10, 13)})
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


class Extractor:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.fonts: dict[int, Font] = {}
        self.ops = 0
        self.images = 0
        self.glyphs = 0
        self.parts: list[str] = []
        self.last: tuple[float, float, float, float, float] | None = None  # x, y, ux, uy, size

    # -- fonts ------------------------------------------------------------------------

    def font(self, ref: Any) -> Font:
        doc = self.doc
        fdict = doc.rdict(ref)
        key = id(fdict)
        font = self.fonts.get(key)
        if font is None:
            try:
                font = build_font(doc, fdict)
            except (Corrupt, Unsupported, ValueError, TypeError, IndexError, KeyError):
                font = Font()
            self.fonts[key] = font
        return font

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
                except (Unsupported, ValueError):
                    continue
        self.parts = []
        self.last = None
        # On damage, keep the text read before it.
        with contextlib.suppress(Corrupt, RecursionError):
            self._run(b"\n".join(chunks), resources, _IDENTITY, 0, set())
        text = "".join(self.parts).translate(CLEAN)
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
        font = Font()
        fs, tc, tw, th, tl = 1.0, 0.0, 0.0, 1.0, 0.0
        tm = tlm = _IDENTITY
        saved: list[tuple[Any, ...]] = []
        text_ops = _TEXT_OPS
        emit = self._emit

        for op, args in iter_ops(content):
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
                    font = self.font(fonts.get(name)) if isinstance(name, str) else Font()
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
                elif op == INLINE_IMAGE:
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
        except Unsupported:
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
