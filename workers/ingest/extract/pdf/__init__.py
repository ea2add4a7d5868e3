"""PDF → text in pure Python (stdlib only, so it runs inside the Worker's Pyodide).

What it reads
-------------
* File structure: classic xref tables, xref streams (with PNG/TIFF predictors), hybrid files,
  incremental updates (/Prev chains) and object streams (/Type /ObjStm). When the xref is
  missing or points at the wrong bytes, objects are found by scanning for ``n g obj``.
* Streams: FlateDecode (+ predictors, salvaging a damaged tail), LZWDecode, ASCIIHexDecode,
  ASCII85Decode, RunLengthDecode. A stream with any other filter (images: DCT, JPX, CCITT,
  JBIG2 ...) is skipped. ``/Length`` may be indirect or wrong: we then look for ``endstream``.
* Text: the page tree (inherited /Resources), content streams (single or array), Form
  XObjects (recursively, depth-limited), ``q Q cm BT ET Tf Td TD Tm T* TL Tc Tw Tz Tj TJ ' "``.
  Fonts: /ToUnicode CMaps (bfchar, bfrange incl. the array form, codespace ranges), simple
  fonts with Standard/WinAnsi/MacRoman/PDFDoc encodings and /Differences (glyph names, incl.
  ``uniXXXX``/``uXXXX``/``f_i``/``a.sc``), Type0 fonts with 2-byte (Identity-H) codes, Type3.

Layout heuristic (documented because retrieval offsets depend on it)
--------------------------------------------------------------------
Text is emitted in **content-stream order**: producers write multi-column pages column by
column, so stream order is reading order far more often than any geometric sort. Between two
consecutive text runs we compare positions in the run's own baseline frame (so rotated pages
behave): a move across the baseline of more than half the font size starts a new line ("\\n");
a move down of more than 2.1 font sizes, or any move *up* by more than a line, starts a new
block ("\\n\\n"). On the same line, a gap wider than 0.15 em (or a jump back of more than an
em) inserts one space, and so does a TJ displacement wider than 0.15 em. Ligatures ﬁ ﬂ ﬀ ﬃ ﬄ
are expanded, NULs and other control characters dropped, NBSP becomes a space, trailing blanks
are stripped from each line.

Output: each page's text, pages joined by ``PAGE_SEPARATOR`` ("\\n\\n"); ``Extracted.pages``
holds exact spans (``text[p.char_start:p.char_end]`` is page p, separator excluded, empty pages
give empty spans). ``title`` comes from the Info dictionary; ``headings`` from the document
outline (bookmarks), placed where the bookmark's title appears on its target page.

Every failure is an ``ExtractionFailed`` with a message a person can act on; internal errors
are wrapped at the boundary. Budgets: 64 MB of decoded stream data, 2000 pages, 20 M content
operators, nesting/recursion limits, cycle detection in the page tree, refs and XObjects.

Modules (each imports only those above it)
-------------------------------------------
``errors``     budgets, user-facing ``MSG_*`` messages, internal exceptions
``syntax``     tokenizer, object parser, content-stream operator reader
``filters``    stream filters and predictors
``document``   xref / object streams / recovery / page tree, stream decoding
``encodings``  text strings, glyph names, single-byte encodings, Helvetica widths
``fonts``      ToUnicode CMaps and font decoding
``content``    content-stream interpreter and the layout heuristic
``outline``    bookmarks → headings
``reader``     ``extract_pdf``: the entry point and error boundary
"""

from __future__ import annotations

from ingest.extract.pdf.encodings import decode_text_string, glyph_to_unicode
from ingest.extract.pdf.errors import (
    MSG_CORRUPT,
    MSG_ENCRYPTED,
    MSG_IMAGES_ONLY,
    MSG_NO_PAGES,
    MSG_NO_TEXT,
    MSG_NO_UNICODE,
    MSG_NOT_PDF,
    MSG_TOO_BIG,
    MSG_TOO_COMPLEX,
    MSG_TOO_MANY_PAGES,
    MSG_UNREADABLE,
)
from ingest.extract.pdf.reader import PAGE_SEPARATOR, extract_pdf

__all__ = [
    "MSG_CORRUPT",
    "MSG_ENCRYPTED",
    "MSG_IMAGES_ONLY",
    "MSG_NOT_PDF",
    "MSG_NO_PAGES",
    "MSG_NO_TEXT",
    "MSG_NO_UNICODE",
    "MSG_TOO_BIG",
    "MSG_TOO_COMPLEX",
    "MSG_TOO_MANY_PAGES",
    "MSG_UNREADABLE",
    "PAGE_SEPARATOR",
    "decode_text_string",
    "extract_pdf",
    "glyph_to_unicode",
]
