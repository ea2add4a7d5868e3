"""Numbered references in the answer's text, for clients that show only text (OpenAI chat UIs).

The answer keeps its [n] markers; a Markdown list follows it, one line per verified citation:

    Chlorophyll absorbs red and blue light [1].

    Sources:
    - [1] Biology, p. 2 — “Chlorophyll absorbs red and blue light”

The same citations, complete, are in the reply's `citations` extension: this list is for
reading (a long quote is shortened here, never there).
"""

from __future__ import annotations

from collections.abc import Iterable

from kernel.contracts.api import Citation

MAX_QUOTE_CHARS = 240


def where(citation: Citation) -> str:
    """The document's title and the quote's page(s): "Biology, p. 2", "Notes, pp. 3–4"."""
    title = " ".join(citation.title.split()) or citation.document_id
    if citation.page is None:
        return title
    if citation.page_end is not None and citation.page_end != citation.page:
        return f"{title}, pp. {citation.page}–{citation.page_end}"
    return f"{title}, p. {citation.page}"


def shortened(quote: str) -> str:
    flat = " ".join(quote.split())  # one line: a newline would end the list item
    if len(flat) <= MAX_QUOTE_CHARS:
        return flat
    return flat[: MAX_QUOTE_CHARS - 1].rstrip() + "…"


def footer(citations: Iterable[Citation]) -> str:
    """The Sources list to append to the answer ("\n\nSources:\n- [n] …"), or "" when there
    are no citations (abstentions, small talk)."""
    lines = [f"- [{c.n}] {where(c)} — “{shortened(c.quote)}”" for c in citations]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""
