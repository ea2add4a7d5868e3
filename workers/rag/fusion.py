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
