"""Tenant-scoped caches in KV: query embeddings, search results, answers.

Keys live under the tenant's prefix (`t/<tenant>/cache/...`) and hash the full request, so no
entry can be shared across tenants. Result caches also embed the tenant's corpus version, read
from D1 (strongly consistent): any document change bumps it, so stale entries become
unreachable at once even though KV itself is only eventually consistent. Search and answer keys
also embed the caller's visibility scope (`Viewer.cache_scope()`: "all" for admins, the exact
visibility disjuncts otherwise), so a cached result is only ever served to callers who may see
every chunk in it. Hit and miss counts are exported in /metrics.
"""

from __future__ import annotations

import json
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.inference import EMBEDDING_MODEL, embed
from kernel.bindings.ports import BindingError, KeyValue
from kernel.domain.tenancy import TenantDB
from kernel.runtime.ids import sha256_hex
from kernel.runtime.metrics import registry
from rag.search import Embedder

TTL_SECONDS = {"embedding": 7 * 24 * 3600, "search": 3600, "answer": 3600}


class Caches:
    def __init__(self, kv: KeyValue | None, db: TenantDB, worker: str) -> None:
        self._kv = kv
        self._db = db
        self._metrics = registry(worker)

    async def corpus_version(self) -> int:
        rows = (
            await self._db.execute("SELECT corpus_version FROM tenant_state WHERE tenant_id = ?1")
        ).rows
        return int(rows[0]["corpus_version"]) if rows else 0

    def key(self, kind: str, parts: Any) -> str:
        viewer = self._db.scope.viewer
        if kind != "embedding":  # a query's embedding reveals nothing about documents
            parts = [viewer.cache_scope() if viewer is not None else "all", parts]
        digest = sha256_hex(json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str))[
            :40
        ]
        return self._db.scope.kv_key("cache", kind, digest)

    def _count(self, kind: str, hit: bool) -> None:
        self._metrics.inc(
            "edgerag_cache_requests_total",
            help="Cache lookups by cache and result",
            cache=kind,
            result="hit" if hit else "miss",
        )
        hits = self._metrics.counter_value("edgerag_cache_requests_total", cache=kind, result="hit")
        misses = self._metrics.counter_value(
            "edgerag_cache_requests_total", cache=kind, result="miss"
        )
        self._metrics.set_gauge(
            "edgerag_cache_hit_ratio",
            hits / (hits + misses),
            help="Cache hit ratio since start",
            cache=kind,
        )

    async def get(self, kind: str, parts: Any) -> Any | None:
        if self._kv is None:
            return None
        try:
            raw = await self._kv.get(self.key(kind, parts))
        except BindingError:
            raw = None  # a cache outage degrades to a miss, never to an error
        self._count(kind, raw is not None)
        return None if raw is None else json.loads(raw)

    async def put(self, kind: str, parts: Any, value: Any) -> None:
        if self._kv is None:
            return
        try:
            await self._kv.put(
                self.key(kind, parts),
                json.dumps(value, separators=(",", ":")),
                ttl_seconds=TTL_SECONDS[kind],
            )
        except BindingError:
            return

    async def clear_results(self) -> int:
        """Delete every cached search and answer of the tenant (purge: data must not linger in KV)."""
        if self._kv is None:
            return 0
        removed = 0
        for kind in ("search", "answer"):
            prefix = self._db.scope.kv_key("cache", kind, "")
            cursor = None
            while True:
                listing = await self._kv.list(prefix, 1000, cursor)
                for key in listing.keys:
                    await self._kv.delete(key)
                    removed += 1
                if listing.cursor is None:
                    break
                cursor = listing.cursor
        return removed


def cached_embedder(b: Bindings, caches: Caches) -> Embedder:
    """The query embedder: each text embedded once per tenant (KV cache), then reused — by
    retrieval, query understanding and intent classification alike."""

    async def embed_query(text: str) -> list[float]:
        parts = [EMBEDDING_MODEL, text]
        cached = await caches.get("embedding", parts)
        if cached is not None:
            return [float(x) for x in cached]
        [vector] = await embed(b.need(b.ai, "AI"), [text])
        await caches.put("embedding", parts, vector)
        return vector

    return embed_query
