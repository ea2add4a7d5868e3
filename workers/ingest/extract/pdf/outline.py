"""Headings from the document outline (bookmarks), placed where each title appears on its page."""

from __future__ import annotations

from typing import Any

from ingest.extract.base import Heading, Page
from ingest.extract.pdf.document import Document
from ingest.extract.pdf.encodings import decode_text_string
from ingest.extract.pdf.errors import MAX_OUTLINE_ITEMS


def outline_headings(
    doc: Document, page_index: dict[int, int], pages: list[Page], text: str
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
