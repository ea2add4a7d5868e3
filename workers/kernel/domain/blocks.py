"""A section's text as blocks — headings, list items, code, paragraphs — so a rewrite or a
translation can keep its structure. Pure Python: used by the rag Worker and the emulator's
stand-ins alike."""

from __future__ import annotations

import re

_FENCE_LINE = re.compile(r"^\s*```")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HEADING_MARKER = re.compile(r"^\s*#{1,6}\s+")

Block = tuple[str, str]  # (kind, text as written)


def section_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    paragraph: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            blocks.append(("paragraph", " ".join(p.strip() for p in paragraph)))
            paragraph.clear()

    for line in text.split("\n"):
        if code is not None:
            code.append(line)
            if _FENCE_LINE.match(line):
                blocks.append(("code", "\n".join(code)))
                code = None
        elif _FENCE_LINE.match(line):
            flush()
            code = [line]
        elif _HEADING_MARKER.match(line):
            flush()
            blocks.append(("heading", line.strip()))
        elif _LIST_MARKER.match(line):
            flush()
            blocks.append(("list_item", line.strip()))
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
    flush()
    if code:
        blocks.append(("code", "\n".join(code)))
    return blocks


def split_marker(kind: str, text: str) -> tuple[str, str]:
    """(the heading's #s or the list marker, the words after it) — so only words are
    translated and the marker is put back as it was."""
    pattern = (
        _HEADING_MARKER if kind == "heading" else _LIST_MARKER if kind == "list_item" else None
    )
    found = pattern.match(text) if pattern else None
    return (found.group(0), text[found.end() :]) if found else ("", text)


def render(blocks: list[tuple[str, str]]) -> str:
    """Blocks back to Markdown: one blank line between blocks, list items kept together."""
    out: list[str] = []
    previous = ""
    for kind, text in blocks:
        if out:
            out.append("\n" if kind == "list_item" and previous == "list_item" else "\n\n")
        out.append(text)
        previous = kind
    return "".join(out)
