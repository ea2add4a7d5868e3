"""`python -m bench.rerank`: concurrent cold reranked searches on the local mesh, with the emulated
reranker reusing the vectors computed at ingest ("reuse") and re-embedding every passage as it
did before ("re-embed").

Ingests documents over HTTP (ASGI) with the real local model, then fires `--parallel` distinct
`POST /v1/search` (hybrid, rerank on, so no result cache is warm) at once and records each
request's wall time and its `rerank_ms`. Writes bench/results/rerank.json. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingestion import paragraphs

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "rerank.json"
WORDS = ["boundary", "lift", "shock", "heat", "library", "oxygen", "students", "flow", "wall"]


def make_ai(mode: str) -> Any:
    from emulator.ai import EmulatedAI
    from emulator.ai.embeddings import F32, Pooling

    class ReEmbeddingAI(EmulatedAI):
        """The behaviour before the vector cache: every text goes through the model."""

        def embed_texts(self, texts: Sequence[str], pooling: Pooling = "mean") -> F32:
            return self.encoder.encode(texts, pooling=pooling)

    return EmulatedAI() if mode == "reuse" else ReEmbeddingAI()


async def run_mode(mode: str, docs: int, per_doc: int, parallel: int) -> dict[str, Any]:
    from bench.mesh import bench_tenant

    ai = make_ai(mode)
    await ai.run("@cf/baai/bge-small-en-v1.5", {"text": ["warm up"]})  # weights outside timing
    async with bench_tenant(ai) as (mesh, client, auth):
        for d in range(docs):
            text = "\n\n".join(paragraphs(per_doc, seed=d))
            await client.post(
                "/v1/documents", json={"title": f"doc {d}", "text": text}, headers=auth
            )
        await mesh.drain()

        async def one(i: int) -> tuple[float, float, int]:
            query = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 5 + 3) % len(WORDS)]} part {i}"
            started = time.perf_counter()
            response = await client.post(
                "/v1/search", json={"query": query, "top_k": 10, "rerank": True}, headers=auth
            )
            wall = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                return wall, 0.0, -response.status_code
            body = response.json()
            return wall, float(body["timings_ms"].get("rerank_ms", 0.0)), len(body["results"])

        started = time.perf_counter()
        samples = await asyncio.gather(*(one(i) for i in range(parallel)))
        elapsed = time.perf_counter() - started
    walls = [s[0] for s in samples]
    reranks = [s[1] for s in samples]
    return {
        "mode": mode,
        "parallel": parallel,
        "wall_ms": {
            "p50": round(float(np.percentile(walls, 50)), 1),
            "p95": round(float(np.percentile(walls, 95)), 1),
        },
        "rerank_ms": {
            "p50": round(float(np.percentile(reranks, 50)), 1),
            "mean": round(statistics.mean(reranks), 1),
        },
        "all_done_s": round(elapsed, 2),
        "errors": sum(1 for s in samples if s[2] < 0),
        "mean_results": round(statistics.mean(max(0, s[2]) for s in samples), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=5)
    parser.add_argument("--paragraphs", type=int, default=40, help="per document")
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--modes", nargs="+", default=["re-embed", "reuse"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    from kernel.runtime.logs import set_sink

    set_sink(lambda _line: None)  # 200+ request log lines per mode would drown the table
    runs = [
        asyncio.run(run_mode(mode, args.docs, args.paragraphs, args.parallel))
        for mode in args.modes
    ]
    result = {
        "command": "python -m bench.rerank",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'mode':<9} {'parallel':>8} {'p50 ms':>9} {'p95 ms':>9} {'rerank p50':>11} {'all done s':>11}"
    )
    for r in runs:
        print(
            f"{r['mode']:<9} {r['parallel']:>8} {r['wall_ms']['p50']:>9} {r['wall_ms']['p95']:>9}"
            f" {r['rerank_ms']['p50']:>11} {r['all_done_s']:>11}"
        )


if __name__ == "__main__":
    main()
