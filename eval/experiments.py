"""Fusion variants for `python -m eval --experiments` (findings, never gated).

Each variant builds a document ranking for one query from what `POST /v1/search` returns for
the single retrievers (`mode=dense` / `mode=keyword`, 100 chunk candidates each — the same
candidate lists the server's hybrid fuses at top_k=100) or from server-side options, so the
deployed search code is not touched. `rrf60` re-implements the server's hybrid client-side and
must reproduce its numbers: that is the check that the other variants are comparable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from eval.harness import Hit, Searcher, Variant
from rag.evaluation import collapse_to_documents
from rag.fusion import reciprocal_rank_fusion
from rag.keyword import STOPWORDS

LEG = 100  # candidates per retriever (Vectorize topK max; the server's depth at top_k=100)

# A small English stopword list (SMART/Lucene-style function words, question words).
# The same list the keyword retriever drops (one source of truth).
_WORD = re.compile(r"\w+", re.UNICODE)


def without_stopwords(query: str) -> str:
    words = [w for w in _WORD.findall(query.lower()) if w not in STOPWORDS]
    return " ".join(words) or query


def _doc_of(*legs: Sequence[Hit]) -> dict[str, str]:
    return {h.chunk_id: h.document_id for leg in legs for h in leg}


def rrf(k: int, *, weights: tuple[float, float] = (1.0, 1.0), nostop: bool = False) -> Variant:
    """Chunk-level (weighted) RRF of the dense and keyword legs, then collapse to documents."""

    async def run(s: Searcher, query: str, depth: int) -> list[str]:
        dense = await s.hits(query, "dense", LEG)
        keyword = await s.hits(without_stopwords(query) if nostop else query, "keyword", LEG)
        doc = _doc_of(dense, keyword)
        scores: dict[str, float] = {}
        for leg, w in ((dense, weights[0]), (keyword, weights[1])):
            for rank, hit in enumerate(leg, start=1):
                scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + w / (k + rank)
        fused = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        return collapse_to_documents(doc[c] for c, _ in fused)[:depth]

    return run


def rrf_documents(k: int) -> Variant:
    """Collapse each leg to documents first (a document's best chunk), then RRF documents."""

    async def run(s: Searcher, query: str, depth: int) -> list[str]:
        dense = collapse_to_documents(h.document_id for h in await s.hits(query, "dense", LEG))
        keyword = collapse_to_documents(h.document_id for h in await s.hits(query, "keyword", LEG))
        return [d for d, _ in reciprocal_rank_fusion([dense, keyword], k=k)][:depth]

    return run


def single(mode: str, *, nostop: bool = False) -> Variant:
    async def run(s: Searcher, query: str, depth: int) -> list[str]:
        q = without_stopwords(query) if nostop else query
        hits = await s.hits(q, "dense" if mode == "dense" else "keyword", LEG)
        return collapse_to_documents(h.document_id for h in hits)[:depth]

    return run


def server(**options: object) -> Variant:
    """The server's hybrid with extra SearchRequest options (e.g. weighted fusion)."""

    async def run(s: Searcher, query: str, depth: int) -> list[str]:
        return collapse_to_documents(
            h.document_id for h in await s.hits(query, "hybrid", LEG, **options)
        )[:depth]

    return run


VARIANTS: dict[str, Variant] = {
    "rrf60 (replica)": rrf(60),
    "rrf10": rrf(10),
    "rrf30": rrf(30),
    "rrf100": rrf(100),
    "rrf60 doc-level": rrf_documents(60),
    "rrf60 dense x2": rrf(60, weights=(2.0, 1.0)),
    "rrf60 keyword x2": rrf(60, weights=(1.0, 2.0)),
    "keyword no-stopwords": single("keyword", nostop=True),
    "rrf60 kw no-stopwords": rrf(60, nostop=True),
    "rrf60 dense x1.5": rrf(60, weights=(1.5, 1.0)),
    "rrf60 dense x2 kw no-stop": rrf(60, weights=(2.0, 1.0), nostop=True),
    "rrf60 dense x1.5 kw no-stop": rrf(60, weights=(1.5, 1.0), nostop=True),
    "weighted 0.5": server(fusion="weighted", dense_weight=0.5),
    "weighted 0.3": server(fusion="weighted", dense_weight=0.3),
    "weighted 0.7": server(fusion="weighted", dense_weight=0.7),
}
