"""`python -m eval` (`make eval`): retrieval quality on the repo's test collections.

    python -m eval [--collections cranfield cisi] [--limit-queries N] [--output PATH]
                   [--experiments]

Builds a fresh local mesh per collection with the real local embedding model, ingests every
document over HTTP, runs every query through `POST /v1/search` in each mode (dense, keyword,
hybrid) and prints nDCG@10, Recall@10, Recall@100, MRR@10 and P@3 per collection and mode.
A full run (all collections, all queries) writes `eval/results.json`, which the test suite's
retrieval gate compares against; partial runs write only with `--output`. The file has no
timestamps or timings, so it only changes when retrieval does.

`--experiments` also scores fusion variants computed client-side from the dense and keyword
result lists (see `eval.experiments`); they go to the output under "experiments".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from eval.datasets import COLLECTIONS
from eval.harness import (
    RESULTS,
    CollectionRun,
    evaluate,
    paired_randomization_p,
    quiet_request_logs,
    results_document,
)
from rag.evaluation import METRICS


def table(runs: list[CollectionRun]) -> str:
    head = f"{'collection':<11} {'mode':<30}" + "".join(f"{m:>12}" for m in METRICS)
    lines = [head, "-" * len(head)]
    for run in runs:
        rows = list(run.modes.items()) + [(f"~ {k}", v) for k, v in run.extra.items()]
        for mode, metrics in rows:
            lines.append(
                f"{run.name:<11} {mode:<30}" + "".join(f"{metrics[m]:>12.4f}" for m in METRICS)
            )
    return "\n".join(lines)


def significance(runs: list[CollectionRun]) -> str:
    """nDCG@10 differences against hybrid, with paired randomization-test p-values."""
    lines = ["nDCG@10 vs hybrid (paired randomization test, 10,000 rounds):"]
    for run in runs:
        base = run.per_query_ndcg.get("hybrid")
        if base is None:
            continue
        for name, values in run.per_query_ndcg.items():
            if name == "hybrid":
                continue
            delta = (sum(values) - sum(base)) / len(base)
            p = paired_randomization_p(values, base)
            lines.append(f"  {run.name:<11} {name:<30} {delta:+.4f}  p={p:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", nargs="+", choices=COLLECTIONS, default=list(COLLECTIONS))
    parser.add_argument("--limit-queries", type=int, default=None, metavar="N")
    parser.add_argument("--output", type=Path, default=None, help=f"default: {RESULTS} (full runs)")
    parser.add_argument("--experiments", action="store_true", help="also score fusion variants")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    with quiet_request_logs():
        runs, ai = asyncio.run(
            evaluate(
                args.collections,
                limit_queries=args.limit_queries,
                experiments=args.experiments,
                log=log,
            )
        )
    elapsed = time.perf_counter() - started
    print(table(runs))
    for run in runs:
        print(
            f"{run.name}: {run.documents} docs / {run.chunks} chunks ingested in "
            f"{run.ingest_seconds:.1f} s ({run.chunks / run.ingest_seconds:.1f} chunks/s); "
            f"{run.queries} queries searched in {run.search_seconds:.1f} s"
        )
    print(f"total {elapsed:.1f} s")
    print(significance(runs))
    full = set(args.collections) == set(COLLECTIONS) and args.limit_queries is None
    output = args.output or (RESULTS if full else None)
    if output is None:
        print("partial run: results not written (pass --output PATH to keep them)")
        return 0
    document = results_document(runs, ai)
    output.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
