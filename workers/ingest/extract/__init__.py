"""Pick an extractor from the declared type, the file name and the bytes themselves.

All extractors are pure Python (stdlib + our code) so they run inside the Worker's Pyodide.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.extract.base import (
    DocumentTooLarge,
    Extracted,
    ExtractionFailed,
    Heading,
    Limits,
    Page,
)
from ingest.extract.docx import extract_docx
from ingest.extract.html import extract_html
from ingest.extract.pdf import extract_pdf
from ingest.extract.text import extract_markdown, extract_text
from kernel.runtime.errors import UnsupportedMediaType

__all__ = [
    "SUPPORTED_TYPES",
    "DocumentTooLarge",
    "Extracted",
    "ExtractionFailed",
    "Heading",
    "Limits",
    "Page",
    "detect_kind",
    "extract",
]

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXTRACTORS: dict[str, Callable[[bytes], Extracted]] = {
    "text": extract_text,
    "markdown": extract_markdown,
    "html": extract_html,
    "pdf": extract_pdf,
    "docx": extract_docx,
}
SUPPORTED_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    DOCX_TYPE: "docx",
}
_EXTENSIONS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
_GENERIC = {"", "application/octet-stream", "binary/octet-stream"}


def detect_kind(data: bytes, content_type: str | None, filename: str | None) -> str:
    """Magic bytes win over labels: a PDF renamed .txt is still a PDF, and a label can't smuggle one."""
    head = data[:1024].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    declared = (content_type or "").split(";")[0].strip().lower()
    by_type = SUPPORTED_TYPES.get(declared)
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if filename and "." in filename else ""
    by_name = _EXTENSIONS.get(suffix)
    kind = by_type or (by_name if declared in _GENERIC else None)
    if kind is None:
        shown = declared or suffix or "unknown"
        raise UnsupportedMediaType(
            f"unsupported document type {shown!r}; send PDF, DOCX, HTML, Markdown or plain text"
        )
    if kind == "pdf":
        raise ExtractionFailed("the file is labelled PDF but does not start with a PDF header")
    if kind == "docx" and not data.startswith(b"PK"):
        raise ExtractionFailed("the file is labelled .docx but is not a zip archive")
    if kind == "text" and head[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    return kind


def extract(
    data: bytes,
    content_type: str | None = None,
    filename: str | None = None,
    limits: Limits | None = None,
) -> tuple[str, Extracted]:
    """Raises ExtractionFailed (422) or DocumentTooLarge (413, naming the limit)."""
    limits = limits or Limits()
    if not data:
        raise ExtractionFailed("the file is empty")
    kind = detect_kind(data, content_type, filename)
    # DOCX inflates a zip: it streams under the limits itself. PDF streams decode under the
    # PDF reader's own budget (extract/pdf/errors.py); text and HTML never outgrow their input.
    extracted = extract_docx(data, limits) if kind == "docx" else EXTRACTORS[kind](data)
    limits.check_text(len(extracted.text))
    return kind, extracted
