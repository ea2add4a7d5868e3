"""Grounded answers: retrieve, assemble context under a token budget, generate, verify, score.

Abstains ("I don't have this information in the documents.") when retrieval finds nothing
relevant enough, when the model says so, or when no citation survives verification.

Confidence (0..1, 0 when abstaining) = 0.5 · relevance + 0.2 · margin + 0.3 · coverage, where
  relevance = the best reranker score among the sources (0..1),
  margin    = how far that score stands above the mean of the next three (clipped to 0..1),
  coverage  = the share of the model's citation markers that survived verification.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable

from kernel.bindings.env import Bindings
from kernel.contracts.api import (
    AnswerRequest,
    AnswerResponse,
    GeneratedBy,
    SearchHit,
    SearchRequest,
)
from kernel.contracts.llm import GenerateRequest, GenerateResponse, Source
from kernel.contracts.rag import Mode
from kernel.domain.prompt_format import ABSTAIN_TEXT
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.domain.wordpiece import count_tokens
from kernel.runtime.metrics import registry
from rag.allowance import ModelAllowance, model_allowance
from rag.citations import Claim, PageStarts, build_citations, from_structured, split_claims
from rag.keyword import STOPWORDS
from rag.llm_client import ask_llm
from rag.search import Embedder, hybrid_search
from rag.understanding import Understanding, small_talk_reply, understand
from rag.usercontext import level_of

MIN_RELEVANCE = 0.3  # below this best reranker score the corpus does not answer the question
CONTEXT_TOKEN_BUDGET = 1800
SELECTION_QUERY_CHARS = 600
PAGE_QUERY_HITS = 24  # 4 bound parameters per hit, under D1's 100 with the tenant


def abstention(
    usage: dict[str, int] | None = None,
    timings: dict[str, float] | None = None,
    generated_by: GeneratedBy | None = None,
    dropped: int = 0,
) -> AnswerResponse:
    return AnswerResponse(
        generated_by=generated_by,
        dropped_sentences=dropped,
        answer=ABSTAIN_TEXT,
        citations=[],
        confidence=0.0,
        follow_ups=[],
        abstained=True,
        usage=usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        timings_ms=timings or {},
    )


def as_sources(found: list[SearchHit]) -> list[SearchHit] | None:
    """Search hits gathered elsewhere (a chat's tool calls) as an answer's sources: each chunk
    once, best first, within the context budget; None when none is relevant enough."""
    best: dict[str, SearchHit] = {}
    for hit in found:
        if hit.chunk_id not in best or (hit.rerank_score or 0) > (
            best[hit.chunk_id].rerank_score or 0
        ):
            best[hit.chunk_id] = hit
    ranked = sorted(best.values(), key=lambda h: -(h.rerank_score or 0.0))
    hits = within_budget(ranked)
    if not hits or (hits[0].rerank_score or 0.0) < MIN_RELEVANCE:
        return None
    return hits


def within_budget(hits: list[SearchHit], budget: int = CONTEXT_TOKEN_BUDGET) -> list[SearchHit]:
    chosen: list[SearchHit] = []
    used = 0
    for hit in hits:
        tokens = count_tokens(hit.text)
        if chosen and used + tokens > budget:
            break
        chosen.append(hit)
        used += tokens
    return chosen


# Logistic calibration (a, b) of the raw score: confidence = 1 / (1 + e^-(a·raw + b)), fitted
# by `python -m eval.answers` on the answer-quality questions (eval/answer_results.json has the
# fit, its ECE and the reliability table, in and out of sample). Fitted on the extractive
# stand-in's answers: a deployment answering with another model should refit on its own.
# None: the raw score (what the eval records).
CALIBRATION: tuple[float, float] | None = (10.498, -8.1243)
_WORD = re.compile(r"\w+")
_SUFFIX = re.compile(r"(?<=\w{3})(?:ing|ed|es|s)$")


def confidence(
    hits: list[SearchHit], seen: int, dropped: int, question: str, quotes: Iterable[str]
) -> float:
    """0.3·relevance + 0.1·margin + 0.2·citations verified + 0.4·question support, where
    support is the share of the question's content words that the verified quotes contain —
    the one feature the answer eval found to separate right answers from wrong ones (the
    retrieval scores alone did not; docs/decisions.md). Then CALIBRATION, if set."""
    scores = sorted((h.rerank_score or 0.0 for h in hits), reverse=True)
    relevance = scores[0] if scores else 0.0
    rest = scores[1:4]
    margin = max(0.0, min(1.0, relevance - (sum(rest) / len(rest) if rest else 0.0)))
    coverage = (seen - dropped) / seen if seen else 0.0
    if coverage == 0.0:
        return 0.0  # nothing verified: no evidence at all
    asked = question_terms(question)
    quoted = question_terms(" ".join(quotes))
    support = len(asked & quoted) / len(asked) if asked else 1.0
    raw = 0.3 * relevance + 0.1 * margin + 0.2 * coverage + 0.4 * support
    if CALIBRATION is not None:
        a, b = CALIBRATION
        raw = 1 / (1 + math.exp(-(a * raw + b)))
    return round(raw, 3)


def question_terms(text: str) -> set[str]:
    """Content words — lower-case, no stopwords, at least three characters — with the common
    English inflections cut off, so "absorb" in a question meets "absorbs" in a quote."""
    return {
        _SUFFIX.sub("", w) for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS
    }


def follow_ups(question: str, hits: list[SearchHit], cited: set[str]) -> list[str]:
    """Up to three questions pointing at relevant material the answer did not use."""
    out: list[str] = []
    for hit in hits:
        if hit.chunk_id in cited:
            continue
        topic = hit.heading_path[-1] if hit.heading_path else hit.title
        suggestion = (
            f"What does “{hit.title}” say about {topic}?"
            if topic != hit.title
            else f"What else does “{hit.title}” cover?"
        )
        if suggestion not in out and topic.lower() not in question.lower():
            out.append(suggestion)
        if len(out) == 3:
            break
    return out


def count_citations(seen: int, dropped: int) -> None:
    metrics = registry("rag")
    metrics.inc(
        "edgerag_citations_total",
        seen - dropped,
        help="Citation markers by outcome",
        result="verified",
    )
    metrics.inc(
        "edgerag_citations_total", dropped, help="Citation markers by outcome", result="dropped"
    )


async def stored_chunk_texts(db: TenantDB, hits: list[SearchHit]) -> dict[str, str]:
    """Chunk texts re-read from D1, as placed in each document's *current* live version."""
    if not hits:
        return {}
    ids = list(dict.fromkeys(h.chunk_id for h in hits))
    marks = ", ".join(f"?{i + 2}" for i in range(len(ids)))
    result = await db.execute(
        "SELECT c.id, c.text FROM version_chunks vc"
        " JOIN documents d ON d.tenant_id = vc.tenant_id AND d.id = vc.document_id AND d.live_version = vc.version"
        " JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
        f" WHERE vc.tenant_id = ?1 AND vc.chunk_id IN ({marks}) AND d.deleted_at IS NULL",
        ids,
    )
    return {str(r["id"]): str(r["text"]) for r in result.rows}


async def page_starts(db: TenantDB, hits: list[SearchHit]) -> PageStarts:
    """Per (document, version): (char_start, page) of the pages the hits' chunks touch, sorted."""
    spans: dict[tuple[str, int], list[tuple[int, int]]] = {}
    paged = [h for h in hits if h.page is not None]
    for start in range(0, len(paged), PAGE_QUERY_HITS):
        part = paged[start : start + PAGE_QUERY_HITS]
        ors = " OR ".join(
            f"(p.document_id = ?{4 * i + 2} AND p.version = ?{4 * i + 3}"
            f" AND p.char_start < ?{4 * i + 4} AND p.char_end >= ?{4 * i + 5})"
            for i in range(len(part))
        )
        params = [v for h in part for v in (h.document_id, h.version, h.char_end, h.char_start)]
        result = await db.execute(
            "SELECT p.document_id, p.version, p.page, p.char_start FROM version_pages p"
            f" WHERE p.tenant_id = ?1 AND ({ors})",
            params,
        )
        for r in result.rows:
            key = (str(r["document_id"]), int(r["version"]))
            spans.setdefault(key, []).append((int(r["char_start"]), int(r["page"])))
    return {key: sorted(set(v)) for key, v in spans.items()}


async def retrieve(
    b: Bindings,
    scope: TenantScope,
    request: AnswerRequest,
    embed_query: Embedder,
    mode: Mode = "hybrid",
) -> tuple[list[SearchHit], dict[str, float]]:
    """The sources an answer may cite (reranked, within the context budget; [] when nothing is
    relevant enough) and the retrieval time. `mode`: the retrievers (the OpenAI-compatible
    models `edgerag-keyword` and `edgerag-dense` answer from one)."""
    started = time.perf_counter()
    retrieval_query = request.query
    if request.selected_text:
        retrieval_query = f"{request.query}\n{request.selected_text[:SELECTION_QUERY_CHARS]}"
    search = await hybrid_search(
        b,
        scope,
        SearchRequest(
            query=retrieval_query[:2000],
            top_k=request.max_sources,
            filters=request.filters,
            mode=mode,
            rerank=True,
        ),
        embed_query,
    )
    timings = {"retrieval_ms": round((time.perf_counter() - started) * 1000, 3)}
    hits = within_budget(search.results)
    if not hits or (hits[0].rerank_score or 0.0) < MIN_RELEVANCE:
        return [], timings
    return hits, timings


def generate_request(
    request: AnswerRequest,
    hits: list[SearchHit],
    stream: bool,
    allowed: ModelAllowance | None = None,
    level: str | None = None,
) -> GenerateRequest:
    return GenerateRequest.model_validate(
        {
            "question": request.query,
            "sources": [Source(n=i, text=h.text) for i, h in enumerate(hits, start=1)],
            "selected_text": request.selected_text,
            "stream": stream,
            "providers": allowed.providers if allowed else None,
            "models": allowed.models if allowed else None,
            "level": level,
        },
        strict=False,
    )


async def call_llm(
    b: Bindings, scope: TenantScope, generate: GenerateRequest, request_id: str
) -> GenerateResponse:
    """`POST /generate` on the llm Worker (not streamed)."""
    return await ask_llm(b, scope.tenant_id, request_id, "/generate", generate, GenerateResponse)


def claims_of(generated: GenerateResponse) -> list[Claim]:
    """The claims to verify: structured ones with their quotes, or the [n]-marker sentences of
    the text; [] for an abstention."""
    text = generated.text.strip()
    if generated.claims is not None:  # structured: each claim with its own quote
        return [from_structured(c.text, c.source, c.quote) for c in generated.claims]
    if not text or text.startswith(ABSTAIN_TEXT):
        return []
    return split_claims(text)


async def answer(
    b: Bindings,
    scope: TenantScope,
    request: AnswerRequest,
    embed_query: Embedder,
    request_id: str,
    evidence: list[SearchHit] | None = None,
    question: str | None = None,
    understood: Understanding | None = None,
    mode: Mode = "hybrid",
) -> AnswerResponse:
    """The question understood first (rag.understanding; `question`: the user's own words when
    `request.query` is a rewritten follow-up): small talk gets a short reply without retrieval
    or a model; everything else a grounded answer, labelled with its intent. `understood`: the
    caller classified the question already (chat does, to choose its path)."""
    understood = understood or await understand(question or request.query, embed_query)
    if understood.intent == "small_talk":
        return small_talk(question or request.query, request.query)
    result = await grounded_answer(b, scope, request, embed_query, request_id, evidence, mode)
    return result.model_copy(
        update={
            "intent": settled_intent(understood.intent, result.abstained),
            "rewritten_query": request.query,
        }
    )


def settled_intent(intent: str, abstained: bool) -> str:
    # "Out of scope" is judged before retrieval; if the documents answer it after all, they
    # define the scope.
    return "factual" if intent == "out_of_scope" and not abstained else intent


def small_talk(question: str, rewritten: str) -> AnswerResponse:
    return AnswerResponse(
        answer=small_talk_reply(question),
        citations=[],
        confidence=0.0,
        follow_ups=[],
        abstained=False,
        usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        intent="small_talk",
        rewritten_query=rewritten,
    )


async def grounded_answer(
    b: Bindings,
    scope: TenantScope,
    request: AnswerRequest,
    embed_query: Embedder,
    request_id: str,
    evidence: list[SearchHit] | None = None,
    mode: Mode = "hybrid",
) -> AnswerResponse:
    """`evidence`: sources already found (agentic chat's searches) instead of retrieving."""
    started = time.perf_counter()
    if evidence is not None:
        hits, timings = evidence, {"retrieval_ms": 0.0}
    else:
        hits, timings = await retrieve(b, scope, request, embed_query, mode)
    if not hits:
        return abstention(timings=timings)
    db = TenantDB(b.need(b.db, "DB"), scope)
    generate = generate_request(
        request,
        hits,
        stream=False,
        allowed=await model_allowance(db),
        level=await level_of(db, scope.viewer),
    )
    generated = await call_llm(b, scope, generate, request_id)
    usage = generated.usage.model_dump()
    by = GeneratedBy(provider=generated.provider, model=generated.model, tried=generated.tried)
    timings["generation_ms"] = round(
        (time.perf_counter() - started) * 1000 - timings["retrieval_ms"], 3
    )
    claims = claims_of(generated)
    if not claims:
        return abstention(usage, timings, by)

    stored = await stored_chunk_texts(db, hits)
    pages = await page_starts(db, hits)
    answer_text, citations, seen, dropped = build_citations(claims, hits, stored, pages)
    # A claim that broke the schema was a citation the model tried and failed to make.
    seen, dropped = seen + generated.malformed_claims, dropped + generated.malformed_claims
    count_citations(seen, dropped)
    timings["verify_ms"] = round((time.perf_counter() - started) * 1000 - sum(timings.values()), 3)
    if not citations:
        return abstention(usage, timings, by, dropped)
    return AnswerResponse(
        dropped_sentences=dropped,
        answer=answer_text,
        citations=citations,
        confidence=confidence(hits, seen, dropped, request.query, (c.quote for c in citations)),
        follow_ups=follow_ups(request.query, hits, {c.chunk_id for c in citations}),
        abstained=False,
        usage=usage,
        timings_ms=timings,
        generated_by=by,
    )
