"""Issue 9, defect 4: a DOCX is inflated and parsed as a bounded stream, whatever its headers say."""

from __future__ import annotations

import struct

import pytest

from ingest.extract import DocumentTooLarge, ExtractionFailed, Limits, extract
from ingest.extract.docx import extract_docx
from tests.fixtures.docxgen import DOCX, repeated_docx

PARAGRAPH = b"<w:p><w:r><w:t>Ice sheets flow downhill under their own weight.</w:t></w:r></w:p>"


def docx(repeat: int) -> bytes:
    return repeated_docx(PARAGRAPH, repeat)


def lie_about_size(data: bytes, size: int) -> bytes:
    """Rewrite the declared uncompressed size in the local header and the central directory."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    struct.pack_into("<I", out, local + 22, size)
    central = out.index(b"PK\x01\x02")
    struct.pack_into("<I", out, central + 24, size)
    return bytes(out)


def test_declared_size_over_the_limit_is_refused_before_inflating() -> None:
    with pytest.raises(DocumentTooLarge, match="max_inflated_bytes = 65536"):
        extract_docx(docx(20_000), Limits(max_inflated_bytes=64 * 1024))


def test_a_lying_header_cannot_inflate_past_what_it_declares() -> None:
    bomb = lie_about_size(docx(200_000), 10_000)  # 16 MB of XML declared as 10 kB
    with pytest.raises((ExtractionFailed, DocumentTooLarge)):
        extract_docx(bomb, Limits())


def test_text_limit_stops_the_stream_early() -> None:
    with pytest.raises(DocumentTooLarge, match="max_text_chars = 5000"):
        extract_docx(docx(20_000), Limits(max_text_chars=5000))


def test_within_limits_the_text_is_whole() -> None:
    _, extracted = extract(docx(500), DOCX, "ice.docx", Limits())
    assert extracted.text.count("Ice sheets flow") == 500


@pytest.mark.parametrize("kind", ["text/plain", "text/markdown"])
def test_text_limit_applies_to_every_format(kind: str) -> None:
    with pytest.raises(DocumentTooLarge, match="max_text_chars"):
        extract(b"word " * 2000, kind, None, Limits(max_text_chars=5000))
