"""Stand-in for `@cf/baai/bge-reranker-base`: no cross-encoder ships offline.

score = sigmoid(W_COS * cosine + W_LEX * bm25 + BIAS), where
  cosine  MiniLM cosine similarity of query and passage (-1..1),
  bm25    `lexical.bm25_score` of the query terms in the passage (0..1).
The weights put an unrelated passage (cosine ~0.1, no shared terms) near 0.1, a passage that
answers the query (cosine >= 0.5, most terms present) above 0.8, and 0.5 around "on topic".
Scores are pairwise like a cross-encoder's (independent of the other contexts) and in 0..1,
but they are NOT bge-reranker scores: rank with them, don't compare them with production's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from emulator.ai import lexical
from emulator.ai.embeddings import F32

NAME = "stand-in: lexical (BM25) + MiniLM cosine (not bge-reranker-base)"
W_COS = 7.0
W_LEX = 4.0
BIAS = -3.0


Embed = Callable[[Sequence[str]], F32]


def rerank_scores(embed: Embed, query: str, passages: Sequence[str]) -> list[float]:
    """Relevance of each passage to `query`, in input order, each in (0, 1).

    `embed` is the AI binding's remembering embedder (`EmulatedAI.embed_texts`): passages
    embedded at ingest cost no forward pass here."""
    if not passages:
        return []
    vecs = embed([query, *passages])
    cosines = (vecs[1:] @ vecs[0]).astype(np.float64)
    q_terms = lexical.terms(query)
    scores = []
    for cos, passage in zip(cosines.tolist(), passages, strict=True):
        lex = lexical.bm25_score(q_terms, lexical.terms(passage))
        z = W_COS * cos + W_LEX * lex + BIAS
        scores.append(1.0 / (1.0 + math.exp(-z)))
    return scores
