"""The entry point: bytes → ``Extracted`` (page texts, exact page spans, title, headings), and
the boundary that turns every internal error into an ``ExtractionFailed``."""

from __future__ import annotations

from ingest.extract.base import Extracted, ExtractionFailed, Page
from ingest.extract.pdf.content import CLEAN, Extractor
from ingest.extract.pdf.document import Document
from ingest.extract.pdf.encodings import decode_text_string
from ingest.extract.pdf.errors import (
    MSG_CORRUPT,
    MSG_ENCRYPTED,
    MSG_IMAGES_ONLY,
    MSG_NO_PAGES,
    MSG_NO_TEXT,
    MSG_NO_UNICODE,
    MSG_NOT_PDF,
    MSG_TOO_COMPLEX,
    MSG_UNREADABLE,
    Corrupt,
    Unsupported,
)
from ingest.extract.pdf.outline import outline_headings

PAGE_SEPARATOR = "\n\n"


def extract_pdf(data: bytes) -> Extracted:
    """PDF bytes → `Extracted` (text, exact page spans, Info title, outline headings)."""
    try:
        return _extract(bytes(data))
    except ExtractionFailed:
        raise
    except Corrupt as exc:
        raise ExtractionFailed(MSG_CORRUPT) from exc
    except (RecursionError, MemoryError) as exc:
        raise ExtractionFailed(MSG_TOO_COMPLEX) from exc
    except Exception as exc:  # the boundary: nothing but ExtractionFailed leaves this package
        raise ExtractionFailed(MSG_UNREADABLE) from exc


def _extract(data: bytes) -> Extracted:
    header = data.find(b"%PDF-", 0, 1024)
    if header < 0:
        raise ExtractionFailed(MSG_NOT_PDF)
    if header:
        data = data[header:]  # junk before the header shifts every offset
    doc = Document(data)
    doc.load_structure()
    if doc.trailer.get("Encrypt") is not None:
        raise ExtractionFailed(MSG_ENCRYPTED)
    if not doc.root_ok() and not doc.recovered:
        raise ExtractionFailed(MSG_CORRUPT)
    pages = doc.pages()
    if not pages:
        raise ExtractionFailed(MSG_CORRUPT if doc.recovered else MSG_NO_PAGES)

    extractor = Extractor(doc)
    texts: list[str] = []
    for page, resources in pages:
        try:
            texts.append(extractor.page_text(page, resources))
        except (
            Corrupt,
            Unsupported,
            ValueError,
            TypeError,
            IndexError,
            KeyError,
            AttributeError,
        ):
            texts.append("".join(getattr(extractor, "parts", [])).translate(CLEAN).strip())

    spans: list[Page] = []
    pos = 0
    for number, page_text in enumerate(texts, 1):
        if number > 1:
            pos += len(PAGE_SEPARATOR)
        spans.append(Page(number, pos, pos + len(page_text)))
        pos += len(page_text)
    text = PAGE_SEPARATOR.join(texts)
    if not text.strip():
        if extractor.images:
            raise ExtractionFailed(MSG_IMAGES_ONLY)
        if extractor.glyphs:
            raise ExtractionFailed(MSG_NO_UNICODE)
        raise ExtractionFailed(MSG_NO_TEXT)

    info = doc.rdict(doc.trailer.get("Info"))
    title = " ".join(decode_text_string(doc.resolve(info.get("Title"))).split()) or None
    try:
        page_index = {id(page): i for i, (page, _) in enumerate(pages)}
        headings = outline_headings(doc, page_index, spans, text)
    except (Corrupt, ValueError, TypeError, KeyError, IndexError, AttributeError):
        headings = []
    return Extracted(text=text, pages=spans, headings=headings, title=title)
