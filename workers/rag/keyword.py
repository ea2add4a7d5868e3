"""BM25 over D1 FTS5, with user text reduced to quoted terms so it can never be query syntax."""

from __future__ import annotations

import re

from kernel.ports import Statement
from kernel.tenancy import TenantDB
from rag.filters import ResolvedFilter

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


def keyword_search(
    db: TenantDB, match: str, limit: int, where: ResolvedFilter | None = None
) -> Statement:
    """Top chunks by BM25 among live, undeleted documents that pass the filter.

    bm25() is lower-is-better; it is negated so every score in the system is higher-is-better.
    """
    where = where or ResolvedFilter()
    clause, params = where.sql(first_param=4)
    return db.statement(
        "SELECT f.chunk_id, -bm25(chunks_fts) AS score FROM chunks_fts f"
        " JOIN version_chunks vc ON vc.tenant_id = ?1 AND vc.chunk_id = f.chunk_id"
        " JOIN documents d ON d.tenant_id = ?1 AND d.id = vc.document_id AND d.live_version = vc.version"
        f" WHERE chunks_fts MATCH ?2 AND f.tenant_id = ?1 AND d.deleted_at IS NULL{clause}"
        " ORDER BY bm25(chunks_fts) LIMIT ?3",
        (match, limit, *params),
    )
