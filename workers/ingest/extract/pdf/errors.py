"""Budgets, the messages a person sees when extraction fails, and internal exceptions.

Every failure leaving the package is an ``ExtractionFailed`` carrying one of the ``MSG_*``
messages; ``Corrupt`` and ``Unsupported`` never leave it (see ``reader.extract_pdf``).
"""

from __future__ import annotations

MAX_DECODED_BYTES = 64 * 1024 * 1024
MAX_PAGES = 2000
MAX_OPERATORS = 20_000_000
MAX_FORM_DEPTH = 10
MAX_NESTING = 256
MAX_OUTLINE_ITEMS = 5000

MSG_NOT_PDF = "this file is not a PDF (it has no %PDF- header)"
MSG_CORRUPT = (
    "the PDF is truncated or corrupt beyond recovery (no readable page tree); "
    "re-export or re-download it and retry"
)
MSG_ENCRYPTED = "the PDF is password-protected (encrypted); remove the password and upload it again"
MSG_NO_PAGES = "the PDF has no pages"
MSG_TOO_MANY_PAGES = f"the PDF has more than {MAX_PAGES} pages; split it into smaller files"
MSG_TOO_BIG = (
    f"the PDF expands to more than {MAX_DECODED_BYTES // (1024 * 1024)} MB of data when "
    "decompressed; split it into smaller files"
)
MSG_TOO_COMPLEX = (
    "the PDF's pages are too complex to process (too many drawing operations); split it"
)
MSG_IMAGES_ONLY = "the PDF contains only images (scanned?); run OCR first, then upload the result"
MSG_NO_UNICODE = (
    "the PDF's text uses fonts without a Unicode mapping, so it cannot be extracted; "
    "re-export it with a different tool or run OCR first"
)
MSG_NO_TEXT = (
    "the PDF has no extractable text (blank pages, or text drawn as vector outlines); run OCR first"
)
MSG_UNREADABLE = (
    "the PDF is corrupt and could not be read; re-save it (e.g. print to PDF) and retry"
)


class Corrupt(Exception):
    """Structure we cannot make sense of (caught and turned into a recovery attempt or a 422)."""


class Unsupported(Exception):
    """A stream filter we do not decode (images): the caller skips the stream."""
