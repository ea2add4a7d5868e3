"""`make bench-peers [ARGS=--quick]`: the synthetic scale curve of edgerag vs the peers.

Each system runs in its own subprocess (peak RSS = its ru_maxrss); edgerag first, in the main
venv, which also exports the corpus (chunk texts, the random unit vectors it indexed, queries
and query vectors) that the peers in `.venv-peers` index as is. Brute-force floor: bytes of the
N×384 float32 matrix / memory bandwidth measured with a numpy copy. Writes
bench/results/peers.json. Ratios are to edgerag (>1: the peer is slower / bigger).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results" / "peers.json"
PEER_PY = REPO / ".venv-peers" / "bin" / "python"
ENV = {**os.environ, "PYTHONPATH": "workers:.:emulator/sdk"}


def bandwidth_gb_s() -> float:
    a = np.ones(64 * 1024 * 1024 // 4, dtype=np.float32)  # 64 MiB
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best / 1e9  # read + write traffic


def run(cmd: list[str]) -> dict[str, Any]:
    out = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer queries; 100k: edgerag+chroma")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    queries = 50 if args.quick else 200
    if not PEER_PY.exists():
        sys.exit("no .venv-peers: run `make bench-peers`")
    bw = bandwidth_gb_s()
    print(f"memory bandwidth (numpy copy, read+write): {bw:.2f} GB/s; load {os.getloadavg()}")
    steps = []
    for n in args.sizes:
        peers = ["chroma", "rank_bm25", "llamaindex"]
        if args.quick and n >= 100_000:
            peers = ["chroma"]
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, "-m", "bench.peers.edgerag_side", d, str(n), str(queries)]
            systems = [run([*cmd, str(args.top_k), str(args.seed)])]
            for p in peers:
                systems.append(
                    run([str(PEER_PY), "bench/peers/peer_runner.py", p, d, str(args.top_k)])
                )
        floor_ms = n * 384 * 4 / (bw * 1e9) * 1000
        base = systems[0]
        for s in systems:
            for key in ("ingest_s", "p50_ms", "p95_ms", "peak_rss_mb"):
                if key in s and key in base and base[key]:
                    s[key + "_ratio"] = round(s[key] / base[key], 2)
            if "p50_ms" in s:
                s["p50_over_floor"] = round(s["p50_ms"] / floor_ms, 1)
        steps.append({"chunks": n, "floor_ms": round(floor_ms, 4), "systems": systems})
        print(f"\n{n} chunks, vector floor {floor_ms:.3f} ms")
        print(f"{'system':<11} {'ingest s':>9} {'p50 ms':>8} {'p95 ms':>8} {'RSS MB':>7}  ratios")
        for s in systems:
            if "error" in s:
                print(f"{s.get('system', '?'):<11} error: {s['error']}")
                continue
            print(
                f"{s['system']:<11} {s['ingest_s']:>9.2f} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f}"
                f" {s['peak_rss_mb']:>7.0f}  ingest×{s.get('ingest_s_ratio')}"
                f" p50×{s.get('p50_ms_ratio')} p95×{s.get('p95_ms_ratio')}"
                f" rss×{s.get('peak_rss_mb_ratio')} floor×{s.get('p50_over_floor')}"
            )
    result = {
        "command": "make bench-peers" + (" ARGS=--quick" if args.quick else ""),
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": list(os.getloadavg())},
        "bandwidth_gb_s": round(bw, 2),
        "queries": queries,
        "top_k": args.top_k,
        "vectors": "random deterministic unit vectors (seeded), identical for every system",
        "scale": steps,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
