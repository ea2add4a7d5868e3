"""BM25 over D1 FTS5, with user text reduced to quoted terms so it can never be query syntax.

Two measured choices keep it fast (bench/search.py, docs/performance.md):
- FTS5 only walks the tenant's rowid range (kernel/domain/fts.py) instead of reading every matching
  row to check an unindexed tenant column;
- without filters, FTS5 ranks first and only its top rows are checked against live versions,
  deletes and the caller's visibility (two phases); with filters the join runs before the limit
  so a selective filter cannot starve the result.
Soft-deleted documents, superseded versions and documents the caller may not see keep their FTS
rows (restore must be instant, and visibility is per caller), so they can fill the first phase:
when it yields fewer than `limit` rows although it was full, a 2,000-row first phase and then
the exact one-phase query run (`keyword_hits`). The answer is always the exact top `limit`; the
common case pays one query (a query matching nothing pays three trivial ones).
Very common English words are left out of the OR-query: BM25 gives them almost no weight, but
they make FTS5 score most of the corpus.
"""

from __future__ import annotations

import re

from kernel.bindings.ports import Statement
from kernel.domain.fts import rowid_range
from kernel.domain.tenancy import TenantDB
from rag.filters import ResolvedFilter

MAX_TERMS = 32
PHASE_ONE_ROWS = 200
PHASE_ONE_BUDGETS = (PHASE_ONE_ROWS, 10 * PHASE_ONE_ROWS)
_LIVE = (
    " JOIN version_chunks vc ON vc.tenant_id = ?1 AND vc.chunk_id = f.chunk_id"
    " JOIN documents d ON d.tenant_id = ?1 AND d.id = vc.document_id AND d.live_version = vc.version"
)
_TERM = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)


def fts_query(text: str) -> str | None:
    """`"term1" OR "term2" …` — quotes make every term a literal; operators become plain words.

    Stopwords are dropped unless nothing else is left. Returns None when the text has no
    searchable terms (e.g. only punctuation).
    """
    terms: list[str] = []
    for term in _TERM.findall(text.lower()):
        if term not in terms:
            terms.append(term)
    content = [t for t in terms if t not in STOPWORDS] or terms
    if not content:
        return None
    return " OR ".join(f'"{t}"' for t in content[:MAX_TERMS])


def exact_keyword_search(
    db: TenantDB, match: str, limit: int, where: ResolvedFilter | None = None
) -> Statement:
    """One phase: the live/deleted/visibility/filter join runs before ORDER BY … LIMIT, so only
    rows the caller may retrieve are ranked. Exact, but it joins every matching row (~2× the
    two-phase cost at 100k chunks), hence only for filters and as the fallback."""
    where = where or ResolvedFilter()
    low, high = rowid_range(db.scope)
    clause, params = where.sql(first_param=6)
    return db.statement(
        f"SELECT f.chunk_id, -bm25(chunks_fts) AS score FROM chunks_fts f{_LIVE}"
        " WHERE chunks_fts MATCH ?2 AND f.rowid BETWEEN ?4 AND ?5 AND f.tenant_id = ?1"
        f" AND d.deleted_at IS NULL{clause} ORDER BY bm25(chunks_fts) LIMIT ?3",
        (match, limit, low, high, *params),
    )


def keyword_search(
    db: TenantDB,
    match: str,
    limit: int,
    where: ResolvedFilter | None = None,
    phase_one: int | None = None,
) -> Statement:
    """The first query for the top chunks by BM25 among rows the caller may retrieve.

    With filters it is the exact query. Without, FTS5 ranks its top `phase_one` rows (default
    `phase_one_rows(limit)`) and only those are joined (two phases); every returned row also
    carries `ranked`, how many rows the first phase held, so the caller can tell a short answer
    from a crowded one.
    bm25() is lower-is-better; it is negated so every score in the system is higher-is-better.
    """
    where = where or ResolvedFilter()
    if where.filtered:
        return exact_keyword_search(db, match, limit, where)
    low, high = rowid_range(db.scope)
    clause, params = where.sql(first_param=7)  # the viewer's visibility only
    return db.statement(
        "WITH f AS MATERIALIZED (SELECT chunk_id, tenant_id, bm25(chunks_fts) AS rank FROM chunks_fts"
        " WHERE chunks_fts MATCH ?2 AND rowid BETWEEN ?4 AND ?5 ORDER BY rank LIMIT ?6)"
        f" SELECT f.chunk_id, -f.rank AS score, (SELECT COUNT(*) FROM f) AS ranked FROM f{_LIVE}"
        f" WHERE f.tenant_id = ?1 AND d.deleted_at IS NULL{clause} ORDER BY f.rank LIMIT ?3",
        (match, limit, low, high, phase_one or phase_one_rows(limit), *params),
    )


def phase_one_rows(limit: int) -> int:
    return max(PHASE_ONE_ROWS, limit * 2)


async def keyword_hits(
    db: TenantDB, match: str, limit: int, where: ResolvedFilter | None = None
) -> list[tuple[str, float]]:
    """(chunk id, score), best first: the exact top `limit` the caller may retrieve.

    Rows that may not be retrieved (deleted, superseded, invisible) never crowd out rows that
    may: while the two-phase query comes back short although its first phase was full (or it
    returned nothing, so fullness is unknown), a wider first phase runs, and last the exact
    one-phase query.
    """
    where = where or ResolvedFilter()
    if where.filtered:
        rows = (await db.run(exact_keyword_search(db, match, limit, where))).rows
        return [(str(r["chunk_id"]), float(r["score"])) for r in rows]
    for budget in PHASE_ONE_BUDGETS:
        budget = max(budget, phase_one_rows(limit))
        rows = (await db.run(keyword_search(db, match, limit, where, budget))).rows
        if len(rows) >= limit or (rows and int(rows[0]["ranked"]) < budget):
            return [(str(r["chunk_id"]), float(r["score"])) for r in rows]
    rows = (await db.run(exact_keyword_search(db, match, limit, where))).rows
    return [(str(r["chunk_id"]), float(r["score"])) for r in rows]
