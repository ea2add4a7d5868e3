"""Hybrid search: dense (Vectorize, namespace = tenant) + BM25 (D1 FTS5), fused by RRF."""

from __future__ import annotations

import json
import time
from typing import Any

from kernel.api import SearchHit, SearchRequest, SearchResponse
from kernel.env import Bindings
from kernel.inference import embed
from kernel.ports import VECTORIZE_MAX_TOP_K
from kernel.tenancy import TenantDB, TenantScope
from rag.fusion import reciprocal_rank_fusion
from rag.keyword import fts_query, keyword_search

CANDIDATES = 50
HYDRATE_BATCH = 90  # ids per SELECT, under D1's 100 bound parameters with the tenant and extras


async def _hydrate(db: TenantDB, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Chunk rows for ids, only as placed in the live version of undeleted documents."""
    rows: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), HYDRATE_BATCH):
        part = ids[start : start + HYDRATE_BATCH]
        marks = ", ".join(f"?{i + 2}" for i in range(len(part)))
        result = await db.execute(
            "SELECT vc.chunk_id AS id, vc.document_id, vc.version, c.text, vc.page, vc.char_start,"
            " vc.char_end, vc.heading_path, d.title FROM version_chunks vc"
            " JOIN documents d ON d.tenant_id = vc.tenant_id AND d.id = vc.document_id"
            " AND d.live_version = vc.version"
            " JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
            f" WHERE vc.tenant_id = ?1 AND vc.chunk_id IN ({marks}) AND d.deleted_at IS NULL",
            part,
        )
        rows.update({str(r["id"]): r for r in result.rows})
    return rows


async def hybrid_search(b: Bindings, scope: TenantScope, query: SearchRequest) -> SearchResponse:
    db = TenantDB(b.need(b.db, "DB"), scope)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    [query_vector] = await embed(b.need(b.ai, "AI"), [query.query])
    t1 = time.perf_counter()
    timings["embed_ms"] = (t1 - t0) * 1000

    matches = await b.need(b.vectors, "VECTORIZE").query(
        query_vector, top_k=min(VECTORIZE_MAX_TOP_K, CANDIDATES), namespace=scope.namespace
    )
    dense = [m.id for m in matches]
    t2 = time.perf_counter()
    timings["dense_ms"] = (t2 - t1) * 1000

    keyword: list[str] = []
    match = fts_query(query.query)
    if match is not None:
        result = await db.run(keyword_search(db, match, CANDIDATES))
        keyword = [str(r["chunk_id"]) for r in result.rows]
    t3 = time.perf_counter()
    timings["keyword_ms"] = (t3 - t2) * 1000

    fused = reciprocal_rank_fusion([dense, keyword])
    dense_rank = {cid: i + 1 for i, cid in enumerate(dense)}
    keyword_rank = {cid: i + 1 for i, cid in enumerate(keyword)}
    # Hydrate more than top_k: stale vectors (deleted or superseded versions) are dropped here.
    candidates = [cid for cid, _ in fused[: query.top_k * 3]]
    rows = await _hydrate(db, candidates)
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
                char_start=row["char_start"],
                char_end=row["char_end"],
                dense_rank=dense_rank.get(cid),
                keyword_rank=keyword_rank.get(cid),
            )
        )
        if len(hits) == query.top_k:
            break
    timings["fuse_hydrate_ms"] = (time.perf_counter() - t3) * 1000
    timings["total_ms"] = (time.perf_counter() - t0) * 1000
    return SearchResponse(results=hits, timings_ms={k: round(v, 3) for k, v in timings.items()})
