# mypy: ignore-errors
"""One peer system over an exported corpus, in `.venv-peers` (never the main venv).

usage: peer_runner.py SYSTEM DIR TOP_K   (SYSTEM: chroma | rank_bm25 | llamaindex)
Reads DIR/corpus.json, vectors.npy, query_vectors.npy (the same vectors edgerag indexed: the
peers never embed anything); prints one JSON object: ingest (index build) time, p50/p95 search
latency (query vectors precomputed), peak RSS.
"""

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOKEN = re.compile(r"\w+")


def tokens(text):
    return TOKEN.findall(text.lower())


def peak_rss_mb():
    """VmHWM of this process (ru_maxrss would carry the parent's high-water mark over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main():
    system, d, top_k = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    corpus = json.loads((d / "corpus.json").read_text())
    ids, texts, queries = corpus["ids"], corpus["texts"], corpus["queries"]
    vecs = np.load(d / "vectors.npy")
    qvecs = np.load(d / "query_vectors.npy")
    tmp = tempfile.mkdtemp()
    started = time.perf_counter()
    if system == "rank_bm25":
        from rank_bm25 import BM25Okapi

        bm25 = BM25Okapi([tokens(t) for t in texts])

        def search(i):
            scores = bm25.get_scores(tokens(queries[i]))
            return np.argsort(-scores)[:top_k]
    elif system == "chroma":
        import chromadb

        client = chromadb.PersistentClient(path=tmp)
        col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
        step = 5000
        for s in range(0, len(ids), step):
            col.add(
                ids=ids[s : s + step], embeddings=vecs[s : s + step], documents=texts[s : s + step]
            )

        def search(i):
            return col.query(query_embeddings=[qvecs[i]], n_results=top_k)["ids"][0]
    elif system == "llamaindex":
        from llama_index.core import Settings, StorageContext, VectorStoreIndex
        from llama_index.core.embeddings import BaseEmbedding
        from llama_index.core.retrievers import QueryFusionRetriever
        from llama_index.core.schema import TextNode
        from llama_index.retrievers.bm25 import BM25Retriever

        lookup = {q: qvecs[i].tolist() for i, q in enumerate(queries)}

        class Precomputed(BaseEmbedding):
            def _get_query_embedding(self, query):
                return lookup[query]

            async def _aget_query_embedding(self, query):
                return lookup[query]

            def _get_text_embedding(self, text):
                raise RuntimeError("corpus embeddings are precomputed")

        Settings.embed_model = Precomputed(model_name="precomputed")
        Settings.llm = None
        nodes = [
            TextNode(id_=i, text=t, embedding=v.tolist())
            for i, t, v in zip(ids, texts, vecs, strict=True)
        ]
        index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults())
        bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=top_k)
        fusion = QueryFusionRetriever(
            [index.as_retriever(similarity_top_k=top_k), bm25],
            similarity_top_k=top_k,
            num_queries=1,
            mode="reciprocal_rerank",
            use_async=False,
        )

        def search(i):
            return [n.node.node_id for n in fusion.retrieve(queries[i])]
    else:
        raise SystemExit(f"unknown system {system}")
    ingest_s = time.perf_counter() - started
    for i in range(min(5, len(queries))):
        search(i)
    lat = []
    for i in range(len(queries)):
        t = time.perf_counter()
        search(i)
        lat.append((time.perf_counter() - t) * 1000)
    print(
        json.dumps(
            {
                "system": system,
                "ingest_s": round(ingest_s, 3),
                "p50_ms": round(float(np.percentile(lat, 50)), 3),
                "p95_ms": round(float(np.percentile(lat, 95)), 3),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
