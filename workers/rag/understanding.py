"""Query understanding before retrieval: what kind of question this is.

Intents: `factual` (the default), `comparison`, `summary_request`, `small_talk`, `out_of_scope`.
Two layers, both cheap enough for every question (no model call):

1. cue rules of high precision — a greeting or thanks with nothing else in it is small talk;
   "compare", "difference", "versus" make a comparison; "summarize", "overview" a summary;
2. otherwise nearest examples under the search embedding (the question's vector is the one
   retrieval uses, cached): the intent of the most similar example phrase, when it beats the
   factual examples by a margin; else `factual`.

Small talk is answered without retrieval or a model; out-of-scope abstains without them. Both
are only chosen on clear evidence — a real question taken for small talk would go unanswered,
so ties go to `factual` (measured on the answer-quality questions: tests/eval).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.search import Embedder

INTENTS = ("factual", "comparison", "summary_request", "small_talk", "out_of_scope")
EXAMPLES: dict[str, tuple[str, ...]] = {
    "factual": (
        "What is photosynthesis?",
        "How does a wing produce lift?",
        "When did the war begin?",
        "Explain the results of the experiment.",
        "Which method gives the best accuracy?",
    ),
    "small_talk": ("Hi there!", "Thanks a lot!", "Good morning, how are you?", "Bye, see you."),
    "out_of_scope": (
        "Tell me a joke.",
        "What's the weather like tomorrow?",
        "Who will win the football match tonight?",
        "Write me a love poem.",
    ),
    "comparison": ("How do mitosis and meiosis differ?", "Compare lift and drag."),
    "summary_request": ("Summarize the chapter.", "Give me an overview of the document."),
}
OTHER_MARGIN = 0.12  # cosine by which a non-factual example must beat the best factual one
TEMPERATURE = 0.05

_GREETING = re.compile(
    r"^\W*(hi|hello|hey|hiya|good (morning|afternoon|evening)|thanks?( you)?( so much| a lot)?|"
    r"thank you( so much| very much)?|cheers|bye|goodbye|see you( later)?|ok(ay)?|cool|great)"
    r"(\W+(there|all|everyone|again|so much|a lot|very much|!|:\)))*\W*$",
    re.IGNORECASE,
)
_COMPARE = re.compile(
    r"\b(compare|comparison|difference|differences|differ|differs|versus|vs\.?|contrast)\b", re.I
)
_SUMMARY = re.compile(r"\b(summari[sz]e|summary|overview|tl;?dr|in a nutshell|recap)\b", re.I)
REPLIES = {
    "hello": "Hello! Ask me anything about your documents.",
    "thanks": "You're welcome! Ask me anything else about your documents.",
    "bye": "Goodbye! Come back with any question about your documents.",
}


@dataclass(frozen=True)
class Understanding:
    intent: str
    confidence: float
    method: str  # "rule" or "embedding"


def small_talk_reply(question: str) -> str:
    text = question.lower()
    if re.search(r"\bthank|\bcheers\b", text):
        return REPLIES["thanks"]
    if re.search(r"\bbye\b|\bgoodbye\b|\bsee you\b", text):
        return REPLIES["bye"]
    return REPLIES["hello"]


def by_rule(question: str) -> str | None:
    if _GREETING.match(question.strip()):
        return "small_talk"
    if _COMPARE.search(question):
        return "comparison"
    if _SUMMARY.search(question):
        return "summary_request"
    return None


async def understand(question: str, embed: Embedder) -> Understanding:
    rule = by_rule(question)
    if rule is not None:
        return Understanding(rule, 1.0, "rule")
    vector = await embed(question[:2000])
    best: dict[str, float] = {}
    for intent, phrases in EXAMPLES.items():
        for phrase in phrases:
            score = cosine(vector, await _example_vector(phrase, embed))
            best[intent] = max(best.get(intent, -1.0), score)
    other = max((i for i in best if i != "factual"), key=lambda i: best[i])
    if best[other] - best["factual"] >= OTHER_MARGIN and other in ("small_talk", "out_of_scope"):
        scores = softmax({k: v for k, v in best.items()})
        return Understanding(other, scores[other], "embedding")
    return Understanding("factual", softmax(best)["factual"], "embedding")


# The built-in example phrases are constants (no tenant's text): their vectors are kept per
# isolate, so a question costs one embedding lookup, not one per example.
_EXAMPLE_VECTORS: dict[str, list[float]] = {}


async def _example_vector(phrase: str, embed: Embedder) -> list[float]:
    found = _EXAMPLE_VECTORS.get(phrase)
    if found is None:
        found = _EXAMPLE_VECTORS[phrase] = await embed(phrase)
    return found


def softmax(sims: dict[str, float]) -> dict[str, float]:
    top = max(sims.values())
    weights = {k: math.exp((v - top) / TEMPERATURE) for k, v in sims.items()}
    total = sum(weights.values())
    return {k: round(w / total, 4) for k, w in weights.items()}


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
