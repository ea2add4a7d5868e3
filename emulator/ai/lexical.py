"""Lexical scoring shared by the reranker and the composer stand-ins (pure Python)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_WORD = re.compile(r"\w+", re.UNICODE)
# Function words carry no topical evidence; without this, "what is the ..." matches anything.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "me",
        "might",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "any",
        "also",
    ]
)

BM25_K1 = 1.2
BM25_B = 0.75
# There is no corpus to average over in a pairwise score, so length is normalised against a
# fixed reference: roughly one retrieval chunk.
BM25_REF_TERMS = 100


def _stem(word: str) -> str:
    # Plural folding only: enough for "limits"/"limit" without a stemmer dependency.
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Lowercased, plural-folded content words of `text`."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def bm25_score(query_terms: Sequence[str], passage_terms: Sequence[str]) -> float:
    """BM25 term saturation with length normalisation, averaged over the unique query terms
    and divided by its ceiling (k1 + 1), so 0 <= score < 1 and it is pairwise: a passage's
    score does not depend on the other passages in the call. All terms weigh the same (no
    IDF: there is no corpus here). One occurrence in a reference-length passage scores 0.45
    per term; repeats approach 1."""
    unique = set(query_terms)
    if not unique or not passage_terms:
        return 0.0
    tf = Counter(passage_terms)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(passage_terms) / BM25_REF_TERMS)
    total = sum(tf[t] * (BM25_K1 + 1) / (tf[t] + norm) for t in unique if t in tf)
    return total / ((BM25_K1 + 1) * len(unique))


def coverage(query_terms: Sequence[str], passage_terms: Sequence[str]) -> float:
    """Fraction of the unique query terms that occur in the passage (0..1)."""
    unique = set(query_terms)
    if not unique:
        return 0.0
    return len(unique.intersection(passage_terms)) / len(unique)
