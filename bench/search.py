"""`make bench-search`: hybrid search latency on the emulator at 10k and 100k chunks, without
the query embedding.

Prints a table and writes bench/results/search.json. Nothing here is a test (no assertions on
time); the targets are printed as met / missed.

Corpus (built in a temp dir, straight into the emulator's stores in big batches):

- the real migrations on an `EmulatedD1`, an `EmulatedVectorize` with 384 dimensions;
- tenant A holds N distinct chunks, tenant B a quarter of that (so every query has to filter
  tenants: FTS5 rows and Vectorize namespaces of both live side by side);
- documents of 5–60 chunks; ~15% have a superseded version 1 whose placements are still in
  `version_chunks`, ~3% are soft-deleted (their chunks stay indexed; `--deleted-share` raises
  it to measure keyword search when deleted rows crowd the FTS ranking);
- chunk texts are 150 words drawn from a Zipf law (s = 1.05) over the ~20k whole words of the
  BERT uncased vocabulary, in its (roughly frequency) order, so FTS5 posting lists have a
  realistic shape: a few words in nearly every chunk, a long tail in very few; each document
  has one of 200 topics (300 words each) that supplies 30% of its words, so content words
  cluster in documents the way real ones do;
- vectors are random unit vectors: embedding quality does not change latency, and running the
  local model over 100k chunks would take hours on this machine, so it is not run at all.

Queries: 2–6 words, mostly words of one of tenant A's topics plus some general words and, in
half of them, one frequent word (rank < 100), the way "why do wings lift" has "why" and "do".
Query vectors are random unit vectors computed before timing.

Each query runs the real `rag.search.hybrid_search` with `embed_query` returning the
precomputed vector (so `embed_ms` is ~0 and is subtracted), `rerank=False` (reranking is a model
call, like the embedding) and no filters. Stages come from its `timings_ms`: filters, dense
(Vectorize query), keyword (FTS5 BM25 SQL), fuse + hydrate; total is the wall time of the call
minus `embed_ms`; total_cpu is the process CPU time of the call, which other processes on the
shared 2 cores inflate far less than wall time (the load average is recorded too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "search.json"
DIMENSIONS = 384
WORDS_PER_CHUNK = 150
ZIPF_S = 1.05
FREQUENT_RANKS = 100
TOPICS = 200  # per tenant
TOPIC_WORDS = 300
TOPIC_SHARE = 0.3  # of a chunk's words that come from its document's topic
TOPIC_WEIGHTS = 1.0 / np.arange(1, TOPIC_WORDS + 1) / np.sum(1.0 / np.arange(1, TOPIC_WORDS + 1))
TARGETS_P95_MS = {10_000: 15.0, 100_000: 60.0}
STAGES = ("filters", "dense", "keyword", "fuse_hydrate", "total", "total_cpu")


# --- corpus --------------------------------------------------------------------------------
def vocabulary() -> list[str]:
    """Whole alphabetic words of the BERT uncased vocabulary, in file order (≈ frequency)."""
    from kernel.domain.wordpiece_vocab import PACKED

    lines = zlib.decompress(base64.b85decode("".join(PACKED))).decode("utf-8").splitlines()
    seen: set[str] = set()
    words = []
    for w in lines:
        if w.isascii() and w.isalpha() and len(w) > 1 and w not in seen:
            seen.add(w)
            words.append(w)
    return words


def zipf_weights(n: int) -> np.ndarray:
    w = 1.0 / np.power(np.arange(1, n + 1, dtype=np.float64) + 2.7, ZIPF_S)
    return np.asarray(w / w.sum())


def make_topics(rng: np.random.Generator, vocabulary_size: int, count: int) -> np.ndarray:
    """count × TOPIC_WORDS word indexes, drawn from the non-frequent part of the vocabulary."""
    return np.stack(
        [
            FREQUENT_RANKS
            + rng.choice(vocabulary_size - FREQUENT_RANKS, TOPIC_WORDS, replace=False)
            for _ in range(count)
        ]
    )


def tenant_id(seed: int) -> str:
    return "t_" + hashlib.sha256(f"tenant{seed}".encode()).hexdigest()[:24]


@dataclass
class Tenant:
    tenant_id: str
    chunks: int
    documents: int = 0
    placements: int = 0


def fill_tenant(
    conn: Any,
    vectors: Any,
    rng: np.random.Generator,
    words: np.ndarray,
    weights: np.ndarray,
    topics: np.ndarray,
    tenant: Tenant,
    deleted_share: float = 0.03,
) -> None:
    """Write one tenant's documents, versions, placements, chunks, FTS rows and vectors."""
    from kernel.bindings.ports import Vector
    from kernel.domain.fts import rowid_range
    from kernel.domain.tenancy import TenantScope

    tid = tenant.tenant_id
    sizes: list[int] = []
    while sum(sizes) < tenant.chunks:
        sizes.append(int(rng.integers(5, 61)))
    sizes[-1] -= sum(sizes) - tenant.chunks
    if sizes[-1] <= 0:
        sizes.pop()
    # Each document is about one topic: a share of its words come from the topic's own list.
    doc_topics = rng.integers(0, len(topics), size=len(sizes))
    chunk_topics = np.repeat(doc_topics, sizes)
    shape = (tenant.chunks, WORDS_PER_CHUNK)
    draws = rng.choice(len(words), size=shape, p=weights)
    topical = topics[chunk_topics[:, None], rng.choice(TOPIC_WORDS, size=shape, p=TOPIC_WEIGHTS)]
    draws = np.where(rng.random(shape) < TOPIC_SHARE, topical, draws)
    texts = [" ".join(words[row]) for row in draws]

    documents, versions, placements, chunk_rows = [], [], [], []
    vector_ids: list[str] = []
    vector_docs: list[str] = []
    next_chunk = 0
    for d, size in enumerate(sizes):
        doc = "d_" + hashlib.sha256(f"{tid}/{d}".encode()).hexdigest()[:24]
        live = 2 if rng.random() < 0.15 else 1
        deleted = "2025-01-01T00:00:00.000Z" if rng.random() < deleted_share else None
        documents.append((tid, doc, f"Document {d}", live, live, deleted))
        ids = []
        offset = 0
        spans = []
        for position in range(size):
            cid = "c_" + hashlib.sha256(f"{tid}/{doc}/{position}".encode()).hexdigest()[:40]
            text = texts[next_chunk]
            next_chunk += 1
            ids.append(cid)
            spans.append((offset, offset + len(text)))
            offset += len(text) + 2
            chunk_rows.append((tid, cid, doc, text, WORDS_PER_CHUNK))
            vector_ids.append(cid)
            vector_docs.append(doc)
        for version in range(1, live + 1):
            status = "ready" if version == live else "superseded"
            keys = (f"t/{tid}/originals/{doc}", f"t/{tid}/text/{doc}/{version}")
            versions.append(
                (tid, doc, version, status, "text", "0" * 64, *keys, offset, offset, None, size)
            )
            for position, (cid, (start, end)) in enumerate(zip(ids, spans, strict=True)):
                if version < live and position % 5 == 4:
                    continue  # the old version lacked some of today's chunks
                heading = json.dumps([f"Section {position // 8 + 1}"])
                placements.append(
                    (tid, doc, version, position, cid, start, end, position // 4 + 1, heading)
                )
    tenant.documents = len(documents)
    tenant.placements = len(placements)

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO documents (tenant_id, id, title, live_version, latest_version, deleted_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        documents,
    )
    conn.executemany(
        "INSERT INTO document_versions (tenant_id, document_id, version, status, kind,"
        " content_hash, original_key, text_key, size_bytes, text_length, page_count, chunk_count)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        versions,
    )
    conn.executemany("INSERT INTO version_chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", placements)
    conn.executemany(
        "INSERT INTO chunks (tenant_id, id, document_id, text, token_count) VALUES (?, ?, ?, ?, ?)",
        chunk_rows,
    )
    # FTS rows in the tenant's rowid range, exactly as ingest writes them (kernel/domain/fts.py).
    conn.execute(
        "INSERT INTO chunks_fts (rowid, tenant_id, chunk_id, text)"
        " SELECT ? + seq, tenant_id, id, text FROM chunks WHERE tenant_id = ?",
        (rowid_range(TenantScope(tid))[0], tid),
    )
    conn.execute("COMMIT")

    async def upsert() -> None:
        batch = 1000  # VECTORIZE_MAX_UPSERT
        for start in range(0, len(vector_ids), batch):
            raw = rng.standard_normal((min(batch, len(vector_ids) - start), DIMENSIONS))
            await vectors.upsert(
                [
                    Vector(vid, row, namespace=tid, metadata={"document_id": doc})
                    for vid, doc, row in zip(
                        vector_ids[start : start + batch],
                        vector_docs[start : start + batch],
                        raw.astype(np.float32).tolist(),
                        strict=True,
                    )
                ]
            )

    asyncio.run(upsert())


def make_queries(
    rng: np.random.Generator,
    words: np.ndarray,
    weights: np.ndarray,
    topics: np.ndarray,
    n: int,
) -> list[str]:
    """2–6 words: mostly words of one of the tenant's topics, some general words, and in half
    of the queries one frequent word (the way "why do wings lift" has "why" and "do")."""
    tail = weights[FREQUENT_RANKS:] / weights[FREQUENT_RANKS:].sum()
    head = weights[:FREQUENT_RANKS] / weights[:FREQUENT_RANKS].sum()
    queries = []
    for _ in range(n):
        length = int(rng.integers(2, 7))
        topic = topics[int(rng.integers(0, len(topics)))]
        picked = [
            str(words[topic[rng.choice(TOPIC_WORDS, p=TOPIC_WEIGHTS)]])
            if rng.random() < 0.7
            else str(words[FREQUENT_RANKS + rng.choice(len(tail), p=tail)])
            for _ in range(length)
        ]
        if rng.random() < 0.5:
            picked[int(rng.integers(0, length))] = str(words[rng.choice(FREQUENT_RANKS, p=head)])
        queries.append(" ".join(picked))
    return queries


# --- search --------------------------------------------------------------------------------
async def one_search(
    bindings: Any, scope: Any, query: str, vector: list[float], top_k: int
) -> dict[str, float]:
    """The real `rag.search.hybrid_search`, with the query embedding supplied precomputed."""
    from kernel.contracts.api import SearchRequest
    from rag.search import hybrid_search

    async def embed_query(_: str) -> list[float]:
        return vector

    request = SearchRequest(query=query, top_k=top_k, rerank=False)
    started, cpu_started = time.perf_counter(), time.process_time()
    response = await hybrid_search(bindings, scope, request, embed_query)
    wall = (time.perf_counter() - started) * 1000
    cpu = (time.process_time() - cpu_started) * 1000
    t = response.timings_ms
    return {
        "filters": t.get("filters_ms", 0.0),
        "dense": t.get("dense_ms", 0.0),
        "keyword": t.get("keyword_ms", 0.0),
        "fuse_hydrate": t.get("fuse_ms", 0.0) + t.get("hydrate_ms", 0.0),
        "total": wall - t.get("embed_ms", 0.0),
        "total_cpu": cpu,
        "hits": len(response.results),
        "keyword_hits": sum(1 for h in response.results if h.keyword_rank is not None),
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def summarize(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        values = [s[stage] for s in samples]
        out[stage] = {
            "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3),
            "p99": round(percentile(values, 99), 3),
            "mean": round(statistics.mean(values), 3),
            "max": round(max(values), 3),
        }
    return out


def run_size(
    chunks: int, queries: int, warmup: int, top_k: int, seed: int, deleted_share: float = 0.03
) -> dict[str, Any]:
    from emulator.d1 import EmulatedD1
    from emulator.vectorize import EmulatedVectorize
    from kernel.bindings.env import Bindings
    from kernel.domain.tenancy import TenantScope

    rng = np.random.default_rng(seed)
    words = np.asarray(vocabulary(), dtype=object)
    weights = zipf_weights(len(words))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        db = EmulatedD1(Path(tmp) / "edgerag.sqlite", migrations_dir=REPO / "migrations")
        db.apply_migrations()
        vectors = EmulatedVectorize(Path(tmp) / "vectors.sqlite", dimensions=DIMENSIONS)
        a = Tenant(tenant_id(1), chunks)
        b = Tenant(tenant_id(2), max(1, chunks // 4))
        conn = db._conn  # bulk load: one transaction of executemany, past D1's per-call limits
        topics = {t.tenant_id: make_topics(rng, len(words), TOPICS) for t in (a, b)}
        for tenant in (a, b):
            fill_tenant(
                conn, vectors, rng, words, weights, topics[tenant.tenant_id], tenant, deleted_share
            )
        setup_seconds = time.perf_counter() - started

        scope = TenantScope(a.tenant_id)
        bindings = Bindings(worker="rag", adapter="emulator", raw_env=None, db=db, vectors=vectors)
        texts = make_queries(rng, words, weights, topics[a.tenant_id], warmup + queries)
        qvecs = rng.standard_normal((len(texts), DIMENSIONS)).astype(np.float32)
        qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
        query_vectors = qvecs.tolist()

        async def run_all() -> list[dict[str, float]]:
            samples = []
            for i, (text, vec) in enumerate(zip(texts, query_vectors, strict=True)):
                sample = await one_search(bindings, scope, text, vec, top_k)
                if i >= warmup:
                    samples.append(sample)
            return samples

        samples = asyncio.run(run_all())
        db.close()
        vectors.close()
    return {
        "chunks": chunks,
        "deleted_share": deleted_share,
        "tenants": [
            {"chunks": t.chunks, "documents": t.documents, "placements": t.placements}
            for t in (a, b)
        ],
        "setup_seconds": round(setup_seconds, 2),
        "queries": queries,
        "warmup_queries": warmup,
        "top_k": top_k,
        "mean_keyword_hits": round(statistics.mean(s["keyword_hits"] for s in samples), 1),
        "mean_hits": round(statistics.mean(s["hits"] for s in samples), 1),
        "latency_ms": summarize(samples),
        "target_p95_ms": TARGETS_P95_MS.get(chunks),
        "example_queries": texts[warmup : warmup + 5],
    }


def blas_threads() -> Any:
    try:
        from threadpoolctl import threadpool_info

        return [{"api": i["internal_api"], "threads": i["num_threads"]} for i in threadpool_info()]
    except Exception:  # pragma: no cover - informational only
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deleted-share", type=float, default=0.03, help="of documents")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    import sqlite3

    print("query embedding excluded: precomputed random unit query vectors;")
    print("corpus vectors are random unit vectors (the model is not run over the corpus)\n")
    runs = []
    for size in args.sizes:
        run = run_size(size, args.queries, args.warmup, args.top_k, args.seed, args.deleted_share)
        runs.append(run)
        tenants = run["tenants"]
        print(
            f"{size} chunks: setup {run['setup_seconds']} s (tenant A {tenants[0]['documents']}"
            f" docs, tenant B {tenants[1]['chunks']} chunks), mean keyword hits"
            f" {run['mean_keyword_hits']}, mean results {run['mean_hits']}"
        )
    result = {
        "command": "make bench-search",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "numpy": np.__version__,
            "blas_threads": blas_threads(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "embedding": "excluded (precomputed query vectors; corpus vectors random, model not run)",
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'chunks':>8}  {'stage':<13} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for run in runs:
        for stage in STAGES:
            s = run["latency_ms"][stage]
            print(
                f"{run['chunks']:>8}  {stage:<13} {s['p50']:>8.2f} {s['p95']:>8.2f} {s['p99']:>8.2f}"
            )
    print()
    for run in runs:
        target = run["target_p95_ms"]
        if target is None:
            continue
        p95 = run["latency_ms"]["total"]["p95"]
        verdict = "met" if p95 <= target else "MISSED"
        print(f"target p95 ≤ {target:g} ms at {run['chunks']} chunks: {p95:.2f} ms — {verdict}")
    try:
        shown = args.output.relative_to(REPO)
    except ValueError:
        shown = args.output
    print(f"\nwrote {shown}")


if __name__ == "__main__":
    main()
