"""HTML → readable text: scripts, styles and navigation dropped, block structure and headings kept."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ingest.extract.base import Extracted, ExtractionFailed, Heading, require_text
from ingest.extract.text import decode_text

_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "button",
        "select",
        "iframe",
        "object",
        "canvas",
        "head",
    }
)
_BLOCK = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "li",
        "ul",
        "ol",
        "table",
        "tr",
        "br",
        "hr",
        "blockquote",
        "pre",
        "dd",
        "dt",
        "dl",
        "figure",
        "figcaption",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "td",
        "th",
        "caption",
        "address",
        "details",
        "summary",
    }
)
_VOID = frozenset(
    {
        "br",
        "hr",
        "img",
        "input",
        "meta",
        "link",
        "area",
        "base",
        "col",
        "embed",
        "source",
        "track",
        "wbr",
    }
)
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.I)


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.skip_depth = 0
        self.headings: list[Heading] = []
        self.heading: tuple[int, int] | None = None  # (level, start offset)
        self.title: str | None = None
        self.in_title = False
        self.pending_break = False

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # CPython before 3.13 raises AssertionError on a malformed "<![" (e.g. "<![\x01");
        # browsers read it as a bogus comment, and so do we.
        try:
            return int(super().parse_marked_section(i, report))
        except AssertionError:
            return int(self.parse_bogus_comment(i, report))

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def _break(self) -> None:
        self.pending_break = self.length > 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP and tag not in _VOID:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag in _BLOCK:
            self._break()
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._break()
            self.heading = (int(tag[1]), -1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _SKIP and tag not in _VOID:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if self.heading and len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            level, start = self.heading
            if start >= 0:
                title = "".join(self.parts)[start:].strip()
                self.headings.append(Heading(start, level, title))
            self.heading = None
        if tag in _BLOCK:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title = ((self.title or "") + data).strip() or None
            return
        if self.skip_depth:
            return
        text = _SPACES.sub(" ", data)
        if not text.strip():
            if self.length and not self.pending_break and not self.parts[-1].endswith((" ", "\n")):
                self._emit(" ")
            return
        if self.pending_break:
            if self.parts and self.parts[-1].endswith(" "):
                self.parts[-1] = self.parts[-1].rstrip(" ")
                self.length = sum(len(p) for p in self.parts)
            self._emit("\n\n")
            self.pending_break = False
            text = text.lstrip()
        elif not self.length:
            text = text.lstrip()
        if self.heading and self.heading[1] < 0:
            self.heading = (self.heading[0], self.length)
        self._emit(text)


def _decode(data: bytes) -> str:
    match = _CHARSET.search(data[:2048])
    charset = match.group(1).decode("ascii").lower() if match else "utf-8"
    if charset in ("utf-8", "utf8"):
        return decode_text(data)
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise ExtractionFailed(
            f"the page declares charset {charset!r} but its bytes do not decode with it"
        ) from exc


def extract_html(data: bytes) -> Extracted:
    builder = _TextBuilder()
    builder.feed(_decode(data))
    builder.close()
    text = "".join(builder.parts).rstrip()
    headings = [h for h in builder.headings if h.char_start < len(text) and h.title]
    return require_text(Extracted(text=text, headings=headings, title=builder.title), "HTML page")
