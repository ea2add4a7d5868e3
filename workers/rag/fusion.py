"""Reciprocal rank fusion (Cormack et al., 2009): robust to retrievers with incomparable scores."""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K
) -> list[tuple[str, float]]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    # Ties broken by id so results are deterministic.
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def weighted_fusion(
    dense: dict[str, float], keyword: dict[str, float], dense_weight: float = 0.5
) -> list[tuple[str, float]]:
    """Min-max normalise each retriever's scores to 0..1, then mix: w·dense + (1−w)·keyword."""

    def normalise(scores: dict[str, float]) -> dict[str, float]:
        if not scores:
            return {}
        low, high = min(scores.values()), max(scores.values())
        span = high - low
        return {k: (v - low) / span if span > 0 else 1.0 for k, v in scores.items()}

    d, k = normalise(dense), normalise(keyword)
    mixed = {
        cid: dense_weight * d.get(cid, 0.0) + (1 - dense_weight) * k.get(cid, 0.0)
        for cid in d.keys() | k.keys()
    }
    return sorted(mixed.items(), key=lambda kv: (-kv[1], kv[0]))
