"""BM25 over D1 FTS5, with user text reduced to quoted terms so it can never be query syntax."""

from __future__ import annotations

import re

from kernel.ports import Statement
from kernel.tenancy import TenantDB

MAX_TERMS = 32
_TERM = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """`"term1" OR "term2" …` — quotes make every term a literal; operators become plain words.

    Returns None when the text has no searchable terms (e.g. only punctuation).
    """
    terms: list[str] = []
    for term in _TERM.findall(text.lower()):
        if term not in terms:
            terms.append(term)
        if len(terms) == MAX_TERMS:
            break
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)


def keyword_search(db: TenantDB, match: str, limit: int) -> Statement:
    # bm25() is lower-is-better; negate so every score in the system is higher-is-better.
    return db.statement(
        "SELECT chunk_id, -bm25(chunks_fts) AS score FROM chunks_fts"
        " WHERE chunks_fts MATCH ?2 AND tenant_id = ?1 ORDER BY bm25(chunks_fts) LIMIT ?3",
        (match, limit),
    )
