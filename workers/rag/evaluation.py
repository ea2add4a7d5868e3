"""Retrieval evaluation against a golden set: the pure core of `POST /v1/eval`.

Pure Python (deployed code: no numpy, no I/O of its own). A golden set is a list of questions,
each with the ids of the documents that answer it and optional graded relevance. The caller
passes a `search` function — `(question, mode, depth) -> ranked document ids` — so the same core
scores the tenant's live index in a Worker and the emulator mesh in `python -m eval`.

Metrics (the usual IR definitions, as trec_eval / BEIR compute them; a retrieved id counts once,
at its first position):

- nDCG@k   sum over the top k of grade / log2(rank + 1), divided by the same sum for the ideal
           ranking (relevant documents sorted by grade). Linear gains: grade 1 for binary sets.
- Recall@k |relevant ∩ top k| / |relevant|
- MRR@k    1 / rank of the first relevant document in the top k, 0 if there is none
- P@k      |relevant ∩ top k| / k

Each metric is averaged over the questions (macro average), rounded to 4 decimals.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from kernel.contracts.rag import MODES, EvalRequest, Mode, dedupe

DEPTH = 100  # documents retrieved per question: enough for Recall@100
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "precision@3")

# (question, mode, depth) -> document ids, best first (duplicates allowed; first one counts)
SearchFn = Callable[[str, Mode, int], Awaitable[Sequence[str]]]
Qrels = Mapping[str, int]  # document id -> grade (> 0 relevant)


# --- metrics (pure functions) ------------------------------------------------------------------
def _dedupe(ranking: Iterable[str]) -> list[str]:
    return dedupe(ranking)


def _relevant(qrels: Qrels) -> set[str]:
    return {doc for doc, grade in qrels.items() if grade > 0}


def dcg_at_k(gains: Sequence[float], k: int) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]) if g)


def ndcg_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """nDCG@k with linear graded gains; the ideal ranking comes from the qrels."""
    ideal = dcg_at_k(sorted((g for g in qrels.values() if g > 0), reverse=True), k)
    if ideal == 0:
        return 0.0
    gains = [max(qrels.get(doc, 0), 0) for doc in _dedupe(ranking)]
    return dcg_at_k(gains, k) / ideal


def recall_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    relevant = _relevant(qrels)
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedupe(ranking)[:k])) / len(relevant)


def precision_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    return len(_relevant(qrels).intersection(_dedupe(ranking)[:k])) / k


def mrr_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    relevant = _relevant(qrels)
    for rank, doc in enumerate(_dedupe(ranking)[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def score_ranking(ranking: Sequence[str], qrels: Qrels) -> dict[str, float]:
    """Every reported metric for one question."""
    return {
        "ndcg@10": ndcg_at_k(ranking, qrels, 10),
        "recall@10": recall_at_k(ranking, qrels, 10),
        "recall@100": recall_at_k(ranking, qrels, 100),
        "mrr@10": mrr_at_k(ranking, qrels, 10),
        "precision@3": precision_at_k(ranking, qrels, 3),
    }


def mean_scores(per_question: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Macro average over questions, rounded to 4 decimals (stable, diffable output)."""
    if not per_question:
        return dict.fromkeys(METRICS, 0.0)
    return {m: round(sum(q[m] for q in per_question) / len(per_question), 4) for m in METRICS}


def collapse_to_documents(document_ids: Iterable[str]) -> list[str]:
    """Chunk hits (in rank order, as their document ids) -> document ranking: a document ranks
    where its first chunk does."""
    return _dedupe(document_ids)


# --- the evaluation ----------------------------------------------------------------------------
async def run_evaluation(
    questions: Sequence[tuple[str, Qrels]],
    search: SearchFn,
    *,
    modes: Sequence[Mode] = MODES,
    depth: int = DEPTH,
    concurrency: int = 1,
    per_question: bool = False,
) -> dict[str, Any]:
    """Search every question in every mode and score the rankings.

    Returns `{"questions": n, "depth": depth, "modes": {mode: {metric: mean}}}` plus, with
    `per_question`, `"per_question": [{"index", "question", mode: {metric: value}}]`.
    Questions without any relevant document are skipped (they cannot be scored) and counted
    in `"skipped"`. Results do not depend on `concurrency`.
    """
    scored = [(q, qrels) for q, qrels in questions if _relevant(qrels)]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(question: str, mode: Mode, qrels: Qrels) -> dict[str, float]:
        async with gate:
            ranking = await search(question, mode, depth)
        return score_ranking(collapse_to_documents(ranking)[:depth], qrels)

    results: dict[Mode, list[dict[str, float]]] = {}
    for mode in modes:
        results[mode] = list(await asyncio.gather(*(one(q, mode, qrels) for q, qrels in scored)))
    report: dict[str, Any] = {
        "questions": len(scored),
        "skipped": len(questions) - len(scored),
        "depth": depth,
        "modes": {mode: mean_scores(results[mode]) for mode in modes},
    }
    if per_question:
        report["per_question"] = [
            {
                "index": i,
                "question": q,
                **{mode: {m: round(v, 4) for m, v in results[mode][i].items()} for mode in modes},
            }
            for i, (q, _) in enumerate(scored)
        ]
    return report


async def evaluate_golden_set(
    request: EvalRequest, search: SearchFn, *, depth: int = DEPTH, concurrency: int = 1
) -> dict[str, Any]:
    """`POST /v1/eval`: a validated golden set -> metrics per mode."""
    return await run_evaluation(
        [(q.question, q.qrels()) for q in request.questions],
        search,
        modes=request.modes,
        depth=depth,
        concurrency=concurrency,
        per_question=request.per_question,
    )
