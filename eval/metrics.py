"""The evaluation metrics, re-exported from their one home in deployed code.

They live in `workers/rag/evaluation.py` because the tenant-facing `POST /v1/eval` runs them
inside a Worker (pure Python); the offline eval imports the very same functions.
"""

from rag.evaluation import (
    METRICS,
    collapse_to_documents,
    dcg_at_k,
    mean_scores,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    score_ranking,
)

__all__ = [
    "METRICS",
    "collapse_to_documents",
    "dcg_at_k",
    "mean_scores",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "score_ranking",
]
