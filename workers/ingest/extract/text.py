"""Plain text and Markdown: decode strictly, keep the text byte-for-byte (offsets must hold)."""

from __future__ import annotations

import codecs
import re

from ingest.extract.base import Extracted, ExtractionFailed, Heading, require_text

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)


def decode_text(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ExtractionFailed("the file claims to be UTF-16 but is not valid UTF-16") from exc
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ExtractionFailed(
                f"the file is not valid UTF-8 (bad byte at position {exc.start}); save it as UTF-8 and retry"
            ) from exc
    if "\x00" in text:
        raise ExtractionFailed("the file contains NUL bytes: it looks binary, not text")
    # Normalise newlines so offsets mean the same thing on every platform.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def extract_text(data: bytes) -> Extracted:
    return require_text(Extracted(text=decode_text(data)), "text file")


def extract_markdown(data: bytes) -> Extracted:
    text = decode_text(data)
    headings = [
        Heading(m.start(), len(m.group(1)), m.group(2).strip()) for m in _MD_HEADING.finditer(text)
    ]
    title = headings[0].title if headings and headings[0].level == 1 else None
    return require_text(Extracted(text=text, headings=headings, title=title), "Markdown file")
