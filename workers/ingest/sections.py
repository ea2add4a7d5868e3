"""A document's sections: the spans its headings open, addressed by heading path or by page.

A heading's section runs from the heading to the next heading of the same or a higher level
(a smaller level number), so "Plants" contains "Plants > Photosynthesis". Text before the
first heading is a section with an empty path. Pure functions over the extracted text's
headings and pages (ingest.jobs stores both in R2 beside the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernel.runtime.errors import NotFound

PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]
    level: int  # 0 for the text before the first heading
    char_start: int
    char_end: int
    page_start: int | None = None
    page_end: int | None = None

    def public(self) -> dict[str, object]:
        return {
            "path": list(self.path),
            "level": self.level,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "page_start": self.page_start,
            "page_end": self.page_end,
        }


Pages = list[tuple[int, int, int]]  # (number, char_start, char_end)
Headings = list[tuple[int, int, str]]  # (char_start, level, title)


def page_of(pages: Pages, offset: int) -> int | None:
    for number, start, end in pages:
        if start <= offset < end:
            return number
    return pages[-1][0] if pages and offset >= pages[-1][1] else None


def span_pages(pages: Pages, length: int) -> tuple[int | None, int | None]:
    return page_of(pages, 0), page_of(pages, max(0, length - 1))


def outline(length: int, headings: Headings, pages: Pages) -> list[Section]:
    ordered = sorted(headings)
    out: list[Section] = []

    def span(start: int, end: int) -> tuple[int | None, int | None]:
        return page_of(pages, start), page_of(pages, max(start, end - 1))

    first = ordered[0][0] if ordered else length
    if first > 0 and length > 0:
        out.append(Section((), 0, 0, first, *span(0, first)))
    stack: list[tuple[int, str]] = []
    for i, (start, level, title) in enumerate(ordered):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = next((s for s, lv, _ in ordered[i + 1 :] if lv <= level), length)
        out.append(Section(tuple(t for _, t in stack), level, start, end, *span(start, end)))
    return out


_PAGES = re.compile(r"^pages?\s+(\d{1,6})(?:\s*[-–]\s*(\d{1,6}))?$", re.IGNORECASE)


def find(sections: list[Section], wanted: str, pages: Pages | None = None) -> Section:
    """By full path ("A > B") first, then by the last heading's title, case-insensitive; or a
    page range written "pages 2-4" (or "page 3")."""
    ranged = _PAGES.match(wanted.strip())
    if ranged and pages is not None:
        first = int(ranged.group(1))
        return by_pages(pages, first, int(ranged.group(2) or first))
    key = wanted.strip().casefold()
    for section in sections:
        if PATH_SEPARATOR.join(section.path).casefold() == key:
            return section
    for section in sections:
        if section.path and section.path[-1].casefold() == key:
            return section
    raise NotFound(f"no section {wanted[:200]!r} in this document")


def by_page(pages: Pages, page: int) -> Section:
    return by_pages(pages, page, page)


def by_pages(pages: Pages, first: int, last: int) -> Section:
    """Pages first..last (inclusive) as one section; 404 unless both exist and are in order."""
    spans = {number: (start, end) for number, start, end in pages}
    if first not in spans or last not in spans or last < first:
        shown = f"page {first}" if first == last else f"pages {first}-{last}"
        raise NotFound(f"this document has no {shown}")
    return Section((), 0, spans[first][0], spans[last][1], first, last)


def by_chars(pages: Pages, start: int, end: int) -> Section:
    """Characters start..end (exclusive) as a section with no path, with the pages they span."""
    return Section((), 0, start, end, page_of(pages, start), page_of(pages, max(start, end - 1)))
