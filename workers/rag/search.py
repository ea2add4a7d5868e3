"""Hybrid search: dense (Vectorize, namespace = tenant) + BM25 (D1 FTS5), fused, then reranked.

Stages and their timings: embed → dense ‖ keyword → fuse → hydrate → rerank. Every stage runs
inside the tenant (namespace, `tenant_id = ?1`), inside the request's filters and inside the
caller's visibility scope (rag/filters.py). The search is a GenAI `retrieval` span and each
stage a child span of it (kernel.runtime.tracing); the query text is recorded only for a tenant
that opted in to content in its traces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.inference import RERANK_MODEL, rerank
from kernel.bindings.ports import VECTORIZE_MAX_TOP_K
from kernel.contracts.api import SearchHit, SearchRequest, SearchResponse
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.runtime import tracing
from rag.filters import ResolvedFilter, resolve
from rag.fusion import reciprocal_rank_fusion, weighted_fusion
from rag.keyword import fts_query, keyword_hits

HYDRATE_BATCH = 90  # ids per SELECT, under D1's 100 bound parameters with the tenant and extras
RERANK_CANDIDATES = 20
DATA_SOURCE = "edgerag-chunks"  # gen_ai.data_source.id: the Vectorize index (with D1 FTS5)

Embedder = Callable[[str], Awaitable[list[float]]]
# The page holding a chunk's last character: the last page starting before the chunk ends.
# Versions ingested before version_pages existed have no rows: the start page stands for both.
PAGE_END = (
    "COALESCE((SELECT p.page FROM version_pages p WHERE p.tenant_id = vc.tenant_id"
    " AND p.document_id = vc.document_id AND p.version = vc.version AND p.char_start < vc.char_end"
    " ORDER BY p.char_start DESC LIMIT 1), vc.page)"
)


def candidate_depth(query: SearchRequest, where: ResolvedFilter) -> int:
    # Each retriever contributes enough candidates that fusion and filtering have room.
    depth = max(50, query.top_k * 3)
    if where.document_ids is None and (where.tags or where.visibility):
        depth = VECTORIZE_MAX_TOP_K  # the filter can only be applied in SQL: over-fetch
    return min(VECTORIZE_MAX_TOP_K, depth)


async def dense_search(
    b: Bindings, scope: TenantScope, vector: list[float], depth: int, where: ResolvedFilter
) -> dict[str, float]:
    """Vector matches the caller may see: one query per visibility disjunct, merged by id.

    The union of each disjunct's top `depth` holds the top `depth` of the whole visible set, so
    the merged ranking equals what a single query with OR would return.
    """
    index = b.need(b.vectors, "VECTORIZE")
    scores: dict[str, float] = {}
    for vector_filter in where.vector_filters():
        for m in await index.query(
            vector, top_k=depth, namespace=scope.namespace, filter=vector_filter
        ):
            scores[m.id] = max(m.score, scores.get(m.id, m.score))
    return scores


async def hydrate(db: TenantDB, ids: list[str], where: ResolvedFilter) -> dict[str, dict[str, Any]]:
    """Chunk rows for ids, only as placed in the live version of undeleted documents that pass."""
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), HYDRATE_BATCH):
        part = ids[start : start + HYDRATE_BATCH]
        marks = ", ".join(f"?{i + 2}" for i in range(len(part)))
        clause, params = where.sql(first_param=len(part) + 2)
        result = await db.execute(
            "SELECT vc.chunk_id AS id, vc.document_id, vc.version, c.text, vc.page, vc.char_start,"
            f" vc.char_end, {PAGE_END} AS page_end, vc.heading_path, d.title FROM version_chunks vc"
            " JOIN documents d ON d.tenant_id = vc.tenant_id AND d.id = vc.document_id"
            " AND d.live_version = vc.version"
            " JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
            f" WHERE vc.tenant_id = ?1 AND vc.chunk_id IN ({marks}) AND d.deleted_at IS NULL{clause}",
            [*part, *params],
        )
        rows.update({str(r["id"]): r for r in result.rows})
    return rows


@contextmanager
def stage(name: str, timings: dict[str, float]) -> Iterator[tracing.Span]:
    """One retrieval stage: a child span `retrieval.<name>`, and its `<name>_ms` timing."""
    started = time.perf_counter()
    with tracing.span(f"retrieval.{name}") as span:
        yield span
    timings[f"{name}_ms"] = round((time.perf_counter() - started) * 1000, 3)


async def hybrid_search(
    b: Bindings, scope: TenantScope, query: SearchRequest, embed_query: Embedder
) -> SearchResponse:
    attributes: dict[str, tracing.Attr | None] = {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.data_source.id": DATA_SOURCE,
        "gen_ai.request.top_k": float(query.top_k),
        "edgerag.search.mode": query.mode,
        "edgerag.search.fusion": query.fusion,
        "edgerag.search.rerank": query.rerank,
    }
    with tracing.span(f"retrieval {DATA_SOURCE}", tracing.CLIENT, attributes) as span:
        tracing.content(span, "gen_ai.retrieval.query.text", query.query)
        found = await _search(b, scope, query, embed_query)
        span.set("edgerag.search.results", len(found.results))
        return found


async def _search(
    b: Bindings, scope: TenantScope, query: SearchRequest, embed_query: Embedder
) -> SearchResponse:
    db = TenantDB(b.need(b.db, "DB"), scope)
    timings: dict[str, float] = {}
    with stage("filters", timings):
        where = await resolve(db, query.filters, scope.viewer)
    if where.empty:
        return SearchResponse(results=[], mode=query.mode, timings_ms=timings)
    depth = candidate_depth(query, where)

    dense: list[str] = []
    dense_scores: dict[str, float] = {}
    if query.mode in ("hybrid", "dense"):
        with stage("embed", timings):
            vector = await embed_query(query.query)
        with stage("dense", timings) as span:
            dense_scores = await dense_search(b, scope, vector, depth, where)
            # Stable: with one query (admins) the order is exactly Vectorize's.
            dense = sorted(dense_scores, key=lambda cid: -dense_scores[cid])[:depth]
            dense_scores = {cid: dense_scores[cid] for cid in dense}
            span.set("edgerag.candidates", len(dense))

    keyword: list[str] = []
    keyword_scores: dict[str, float] = {}
    match = fts_query(query.query) if query.mode in ("hybrid", "keyword") else None
    if match is not None:
        with stage("keyword", timings) as span:
            ranked = await keyword_hits(db, match, depth, where)
            keyword = [cid for cid, _ in ranked]
            keyword_scores = dict(ranked)
            span.set("edgerag.candidates", len(keyword))

    with stage("fuse", timings):
        if query.fusion == "weighted":
            fused = weighted_fusion(dense_scores, keyword_scores, query.dense_weight)
        else:
            fused = reciprocal_rank_fusion([r for r in (dense, keyword) if r])

    # Hydrate more than top_k: stale vectors (deleted or superseded) and filtered rows drop here.
    wanted = max(query.top_k, RERANK_CANDIDATES if query.rerank else 0)
    with stage("hydrate", timings) as span:
        hits = await _hydrated(db, fused, dense, keyword, wanted, where)
        span.set("edgerag.candidates", len(hits))

    reranker = None
    if query.rerank and hits:  # even one hit: its score decides abstention
        with stage("rerank", timings):
            scores = await rerank(b.need(b.ai, "AI"), query.query, [h.text for h in hits])
        for hit, rerank_score in zip(hits, scores, strict=True):
            hit.rerank_score = round(rerank_score, 6)
        hits.sort(key=lambda h: (-(h.rerank_score or 0.0), -h.score, h.chunk_id))
        reranker = RERANK_MODEL
    timings["total_ms"] = round(sum(timings.values()), 3)
    return SearchResponse(
        results=hits[: query.top_k], mode=query.mode, reranker=reranker, timings_ms=timings
    )


async def _hydrated(
    db: TenantDB,
    fused: list[tuple[str, float]],
    dense: list[str],
    keyword: list[str],
    wanted: int,
    where: ResolvedFilter,
) -> list[SearchHit]:
    """The first `wanted` fused candidates that are still live and pass the filters."""
    candidates = [cid for cid, _ in fused[: wanted * 2]]
    rows = await hydrate(db, candidates, where)
    dense_rank = {cid: i + 1 for i, cid in enumerate(dense)}
    keyword_rank = {cid: i + 1 for i, cid in enumerate(keyword)}
    hits: list[SearchHit] = []
    for cid, score in fused:
        row = rows.get(cid)
        if row is None:
            continue
        hits.append(
            SearchHit(
                document_id=row["document_id"],
                version=row["version"],
                title=row["title"],
                heading_path=json.loads(row["heading_path"] or "[]"),
                chunk_id=cid,
                text=row["text"],
                score=round(score, 6),
                page=row["page"],
                page_start=row["page"],
                page_end=row["page_end"],
                char_start=row["char_start"],
                char_end=row["char_end"],
                dense_rank=dense_rank.get(cid),
                keyword_rank=keyword_rank.get(cid),
            )
        )
        if len(hits) == wanted:
            break
    return hits
