"""DOCX (Office Open XML) → text: paragraphs, tables and heading styles, from the zip in memory."""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

from ingest.extract.base import Extracted, ExtractionFailed, Heading, require_text

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MAX_XML_BYTES = 64 * 1024 * 1024  # zip-bomb guard: the inflated document.xml
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


def extract_docx(data: bytes) -> Extracted:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        info = archive.getinfo("word/document.xml")
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionFailed(
            "this is not a valid .docx file (no word/document.xml inside)"
        ) from exc
    if info.file_size > MAX_XML_BYTES:
        raise ExtractionFailed(
            "the .docx expands to more than 64 MB of XML; split it into smaller files"
        )
    if info.flag_bits & 0x1:
        raise ExtractionFailed("the .docx is encrypted; remove the password and retry")
    try:
        root = ElementTree.fromstring(archive.read(info))
    except (ElementTree.ParseError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError) as exc:
        raise ExtractionFailed("the .docx is corrupt: its document XML cannot be read") from exc

    body = root.find(f"{_W}body")
    if body is None:
        raise ExtractionFailed("the .docx has no document body")
    blocks: list[tuple[str, int | None]] = []
    for element in body:
        if element.tag == f"{_W}p":
            text = _paragraph_text(element)
            if text:
                blocks.append((text, _heading_level(element)))
        elif element.tag == f"{_W}tbl":
            for row in element.iter(f"{_W}tr"):
                cells = [
                    " ".join(_paragraph_text(p) for p in cell.iter(f"{_W}p")).strip()
                    for cell in row.iter(f"{_W}tc")
                ]
                line = " | ".join(c for c in cells if c)
                if line:
                    blocks.append((line, None))
    parts: list[str] = []
    headings: list[Heading] = []
    offset = 0
    for text, level in blocks:
        if parts:
            parts.append("\n\n")
            offset += 2
        if level is not None:
            headings.append(Heading(offset, level, text))
        parts.append(text)
        offset += len(text)
    title = headings[0].title if headings and headings[0].level == 1 else None
    return require_text(
        Extracted(text="".join(parts), headings=headings, title=title), ".docx file"
    )
