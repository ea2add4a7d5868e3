"""DOCX (Office Open XML) → text: paragraphs, tables and heading styles, inflated and parsed as a
stream under the tenant's limits (a zip bomb stops at max_inflated_bytes + one piece)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import cast
from xml.etree import ElementTree

from ingest.extract.base import (
    DocumentTooLarge,
    Extracted,
    ExtractionFailed,
    Heading,
    Limits,
    require_text,
)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_PIECE = 256 * 1024  # inflated bytes handed to the XML parser at a time
_HEADING_STYLE = re.compile(r"^(?:heading|berschrift|titre)\s*(\d)$", re.I)


def _paragraph_text(paragraph: ElementTree.Element) -> str:
    out: list[str] = []
    for node in paragraph.iter():
        if node.tag == f"{_W}t" and node.text:
            out.append(node.text)
        elif node.tag == f"{_W}tab":
            out.append("\t")
        elif node.tag in (f"{_W}br", f"{_W}cr"):
            out.append("\n")
    return "".join(out).strip()


def _heading_level(paragraph: ElementTree.Element) -> int | None:
    style = paragraph.find(f"{_W}pPr/{_W}pStyle")
    if style is None:
        return None
    value = (style.get(f"{_W}val") or "").replace("-", " ").strip()
    if value.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(value)
    return int(match.group(1)) if match else None


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The member's bytes, piece by piece, never more than `limit` + one piece in memory.

    The declared size is checked first (free: it is in the central directory); the count is
    checked again while inflating, because a crafted header can lie (zipfile also stops at the
    declared size and then fails the CRC check).
    """
    if info.file_size > limit:
        raise _too_large(limit)
    total = 0
    with archive.open(info) as member:
        while piece := member.read(min(_PIECE, limit + 1 - total)):
            total += len(piece)
            if total > limit:
                raise _too_large(limit)
            yield piece


def _too_large(limit: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"the .docx expands to more than {limit:,} bytes of XML (limit max_inflated_bytes ="
        f" {limit}); it is a zip bomb or needs splitting into smaller files"
    )


def _blocks(element: ElementTree.Element) -> list[tuple[str, int | None]]:
    """Text blocks of one child of <w:body>: a paragraph, or one block per table row."""
    if element.tag == f"{_W}p":
        text = _paragraph_text(element)
        return [(text, _heading_level(element))] if text else []
    blocks: list[tuple[str, int | None]] = []
    if element.tag == f"{_W}tbl":
        for row in element.iter(f"{_W}tr"):
            cells = [
                " ".join(_paragraph_text(p) for p in cell.iter(f"{_W}p")).strip()
                for cell in row.iter(f"{_W}tc")
            ]
            line = " | ".join(c for c in cells if c)
            if line:
                blocks.append((line, None))
    return blocks


def open_docx(data: bytes, limits: Limits) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    """Cheap checks only (central directory, flags): what the request path can afford."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("word/document.xml")
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionFailed(
            "this is not a valid .docx file (no word/document.xml inside)"
        ) from exc
    if info.file_size > limits.max_inflated_bytes:
        raise _too_large(limits.max_inflated_bytes)
    if info.flag_bits & 0x1:
        raise ExtractionFailed("the .docx is encrypted; remove the password and retry")
    return archive, info


def extract_docx(data: bytes, limits: Limits | None = None) -> Extracted:
    """Stream document.xml through a pull parser, dropping each body element once read, so
    memory and time follow the text kept (bounded by max_text_chars), not the inflated XML."""
    limits = limits or Limits()
    archive, info = open_docx(data, limits)
    parser: ElementTree.XMLPullParser[ElementTree.Element] = ElementTree.XMLPullParser(
        events=("start", "end")
    )
    stack: list[ElementTree.Element] = []
    body: ElementTree.Element | None = None
    parts: list[str] = []
    headings: list[Heading] = []
    offset = 0
    try:
        for piece in _inflate(archive, info, limits.max_inflated_bytes):
            parser.feed(piece)
            for event, node in cast(
                Iterator[tuple[str, ElementTree.Element]], parser.read_events()
            ):  # "start"/"end" events carry elements
                element = node
                if event == "start":
                    stack.append(element)
                    if len(stack) == 2 and element.tag == f"{_W}body":
                        body = element
                    continue
                stack.pop()
                if body is None or len(stack) != 2 or stack[-1] is not body:
                    continue
                for text, level in _blocks(element):
                    if parts:
                        parts.append("\n\n")
                        offset += 2
                    if level is not None:
                        headings.append(Heading(offset, level, text))
                    parts.append(text)
                    offset += len(text)
                body.remove(element)  # read: free it
                limits.check_text(offset)
        parser.close()
    except (ElementTree.ParseError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as exc:
        raise ExtractionFailed("the .docx is corrupt: its document XML cannot be read") from exc
    if body is None:
        raise ExtractionFailed("the .docx has no document body")
    title = headings[0].title if headings and headings[0].level == 1 else None
    return require_text(
        Extracted(text="".join(parts), headings=headings, title=title), ".docx file"
    )
