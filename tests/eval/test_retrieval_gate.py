"""Retrieval quality gate: the full `python -m eval` run against the committed results.

Both collections go through a fresh local mesh over HTTP (ingest every document, search every
query in every mode) with the real local embedding model — the same code as `make eval`, not
a copy. The gate fails when hybrid nDCG@10 drops more than TOLERANCE below the value committed
in `eval/results.json`, or when hybrid stops beating both single retrievers. After an intended
change in retrieval, run `make eval` and commit the new `eval/results.json`.

The tolerance absorbs run-to-run noise only: fused-score ties are broken by chunk id, and
chunk ids are salted with the (random) tenant id, so a few tied documents can swap places
between runs (measured spread: see the eval report in the PR that set TOLERANCE).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from eval.datasets import COLLECTIONS
from eval.harness import RESULTS, CollectionRun, evaluate, quiet_request_logs

TOLERANCE = 0.01

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return dict(json.loads(RESULTS.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def runs() -> dict[str, CollectionRun]:
    with quiet_request_logs():
        measured, _ = asyncio.run(evaluate(list(COLLECTIONS)))
    return {run.name: run for run in measured}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_hybrid_ndcg_at_10_holds(
    collection: str, runs: dict[str, CollectionRun], committed: dict[str, Any]
) -> None:
    run = runs[collection]
    expected = committed["collections"][collection]
    assert run.queries == expected["queries"] and run.documents == expected["documents"]
    baseline = expected["modes"]["hybrid"]["ndcg@10"]
    measured = run.modes["hybrid"]["ndcg@10"]
    assert measured >= baseline - TOLERANCE, (
        f"{collection}: hybrid nDCG@10 {measured:.4f} < committed {baseline:.4f} - {TOLERANCE}"
        f" (all modes now: {run.modes})"
    )


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_hybrid_beats_both_single_retrievers(
    collection: str, runs: dict[str, CollectionRun]
) -> None:
    ndcg = {mode: metrics["ndcg@10"] for mode, metrics in runs[collection].modes.items()}
    assert ndcg["hybrid"] > ndcg["dense"], ndcg
    assert ndcg["hybrid"] > ndcg["keyword"], ndcg
