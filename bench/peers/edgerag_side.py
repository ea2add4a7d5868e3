"""edgerag's side of one synthetic scale step, in its own process (peak RSS is per process).

Builds tenant A of `bench.search` (same generator: Zipf text, topics, random unit vectors)
straight into an `EmulatedD1` + `EmulatedVectorize`, exports the chunk texts, vectors and
queries to `<dir>` for the peers, then times the real `rag.search.hybrid_search`.
Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import search as bs


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would carry the parent's high-water mark over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main(out: Path, chunks: int, queries: int, top_k: int, seed: int) -> None:
    from emulator.d1 import EmulatedD1
    from emulator.vectorize import EmulatedVectorize
    from kernel.bindings.env import Bindings
    from kernel.domain.tenancy import TenantScope

    rng = np.random.default_rng(seed)
    words = np.asarray(bs.vocabulary(), dtype=object)
    weights = bs.zipf_weights(len(words))
    with tempfile.TemporaryDirectory() as tmp:
        db = EmulatedD1(Path(tmp) / "edgerag.sqlite", migrations_dir=bs.REPO / "migrations")
        db.apply_migrations()
        vectors = EmulatedVectorize(Path(tmp) / "vectors.sqlite", dimensions=bs.DIMENSIONS)
        tenant = bs.Tenant(bs.tenant_id(1), chunks)
        topics = bs.make_topics(rng, len(words), bs.TOPICS)
        started = time.perf_counter()
        bs.fill_tenant(db._conn, vectors, rng, words, weights, topics, tenant, 0.0)
        build_s = time.perf_counter() - started
        space = vectors._space(tenant.tenant_id)
        ids = list(space.ids)
        text_of = dict(
            db._conn.execute(
                "SELECT id, text FROM chunks WHERE tenant_id = ?", (tenant.tenant_id,)
            ).fetchall()
        )
        texts = make = bs.make_queries(rng, words, weights, topics, queries)
        qv = rng.standard_normal((len(texts), bs.DIMENSIONS)).astype(np.float32)
        qv /= np.linalg.norm(qv, axis=1, keepdims=True)
        np.save(out / "vectors.npy", np.ascontiguousarray(space.matrix[: len(ids)]))
        np.save(out / "query_vectors.npy", qv)
        (out / "corpus.json").write_text(
            json.dumps({"ids": ids, "texts": [text_of[i] for i in ids], "queries": make})
        )
        scope = TenantScope(tenant.tenant_id)
        bindings = Bindings(worker="rag", adapter="emulator", raw_env=None, db=db, vectors=vectors)

        async def run_all() -> list[float]:
            for t, v in zip(texts[:5], qv[:5].tolist(), strict=True):  # warm-up
                await bs.one_search(bindings, scope, t, v, top_k)
            return [
                (await bs.one_search(bindings, scope, t, v, top_k))["total"]
                for t, v in zip(texts, qv.tolist(), strict=True)
            ]

        lat = asyncio.run(run_all())
        db.close()
        vectors.close()
    print(
        json.dumps(
            {
                "system": "edgerag",
                "ingest_s": round(build_s, 3),
                "ingest_note": "bulk load into D1/FTS5 + Vectorize (bench.search), not the API",
                "p50_ms": round(float(np.percentile(lat, 50)), 3),
                "p95_ms": round(float(np.percentile(lat, 95)), 3),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
