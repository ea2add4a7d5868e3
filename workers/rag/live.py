"""A grounded answer streamed as the model writes it, each sentence released once verified.

`open_live` retrieves, reads the cited chunks' stored text, and opens the llm Worker's token
stream — all before the first byte, so a failure there (nothing relevant, every provider down)
is still a plain answer or a JSON error. The items it then yields:

- `Sentence`: a complete sentence (or a structured claim, checked against its quote) whose
  citations were verified against the stored chunk text
  (rag.citations.Verifier), with the citations it adds; a sentence without a surviving citation
  is dropped and counted, never shown;
- `Spent`: the tokens spent so far (the llm Worker's running estimate), for live budgets;
- `Finished`: usage, confidence, follow-ups, who generated — or an abstention;
- `Failed`: the provider stopped mid-answer; what was released stays verified.

Closing the iterator (the reader went away) closes the llm stream, which closes the provider's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

from pydantic import BaseModel, ValidationError

from kernel.bindings.env import Bindings
from kernel.bindings.services import call, upstream_error
from kernel.contracts.api import AnswerRequest, Citation, GeneratedBy, SearchHit
from kernel.contracts.llm import (
    LLM_STREAM_EVENTS,
    StreamClaim,
    StreamDelta,
    StreamEnd,
    StreamError,
    StreamStart,
)
from kernel.contracts.rag import Mode
from kernel.domain.prompt_format import ABSTAIN_TEXT
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.runtime import sse
from kernel.runtime.errors import UpstreamError
from rag.allowance import model_allowance
from rag.answer import (
    confidence,
    count_citations,
    follow_ups,
    generate_request,
    page_starts,
    retrieve,
    settled_intent,
    small_talk,
    stored_chunk_texts,
)
from rag.citations import Verifier, complete_prefix, from_structured, split_claims
from rag.search import Embedder
from rag.understanding import Understanding, understand
from rag.usercontext import level_of

ZERO = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@dataclass(frozen=True)
class Sentence:
    text: str  # with its renumbered markers, e.g. "Lift exists [1]."
    citations: list[Citation]  # the citations this sentence adds (earlier ones are not repeated)


@dataclass(frozen=True)
class Spent:
    tokens: int


@dataclass(frozen=True)
class Finished:
    usage: dict[str, int]
    confidence: float
    abstained: bool
    follow_ups: list[str]
    generated_by: GeneratedBy | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    dropped: int = 0
    intent: str | None = None
    rewritten_query: str | None = None


@dataclass(frozen=True)
class Failed:
    code: str
    message: str
    usage: dict[str, int]


Item = Sentence | Spent | Finished | Failed


async def open_live(
    b: Bindings,
    scope: TenantScope,
    request: AnswerRequest,
    embed_query: Embedder,
    request_id: str,
    evidence: list[SearchHit] | None = None,
    question: str | None = None,
    understood: Understanding | None = None,
    mode: Mode = "hybrid",
) -> AsyncIterator[Item]:
    """As rag.answer.answer, streamed: small talk is one sentence; the rest is labelled with
    its intent in the `Finished` item."""
    understood = understood or await understand(question or request.query, embed_query)
    if understood.intent == "small_talk":
        reply = small_talk(question or request.query, request.query)
        return _abstain(
            Finished(
                ZERO, 0.0, False, [], None, intent="small_talk", rewritten_query=request.query
            ),
            reply.answer,
        )
    items = await _open_grounded(b, scope, request, embed_query, request_id, evidence, mode)
    return _labelled(items, understood.intent, request.query)


async def _labelled(items: AsyncIterator[Item], intent: str, rewritten: str) -> AsyncIterator[Item]:
    try:
        async for item in items:
            if isinstance(item, Finished):
                item = replace(
                    item,
                    intent=settled_intent(intent, item.abstained),
                    rewritten_query=rewritten,
                )
            yield item
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


async def _open_grounded(
    b: Bindings,
    scope: TenantScope,
    request: AnswerRequest,
    embed_query: Embedder,
    request_id: str,
    evidence: list[SearchHit] | None = None,
    mode: Mode = "hybrid",
) -> AsyncIterator[Item]:
    started = time.perf_counter()
    if evidence is not None:
        hits, timings = evidence, {"retrieval_ms": 0.0}
    else:
        hits, timings = await retrieve(b, scope, request, embed_query, mode)
    if not hits:
        return _abstain(Finished(ZERO, 0.0, True, [], None, timings))
    db = TenantDB(b.need(b.db, "DB"), scope)
    stored = await stored_chunk_texts(db, hits)
    pages = await page_starts(db, hits)
    generate = generate_request(
        request,
        hits,
        stream=True,
        allowed=await model_allowance(db),
        level=await level_of(db, scope.viewer),
    )
    upstream = await call(
        b.service("LLM"),
        "POST",
        "/generate",
        request_id=request_id,
        tenant_id=scope.tenant_id,
        payload=generate.model_dump(exclude_none=True),
    )
    if upstream.status != 200 or upstream.stream is None:
        raise upstream_error(upstream, "llm Worker")
    return _verify(upstream.stream, request, hits, Verifier(hits, stored, pages), timings, started)


async def _abstain(finished: Finished, text: str = ABSTAIN_TEXT) -> AsyncIterator[Item]:
    yield Sentence(text, [])
    yield finished


async def _verify(
    chunks: AsyncIterator[bytes],
    request: AnswerRequest,
    hits: list[SearchHit],
    verifier: Verifier,
    timings: dict[str, float],
    started: float,
) -> AsyncIterator[Item]:
    pending, released, abstained = "", 0, False
    by: GeneratedBy | None = None
    usage = dict(ZERO)
    try:
        async for event in _llm_events(chunks):
            if isinstance(event, StreamStart):
                by = GeneratedBy(provider=event.provider, model=event.model, tried=event.tried)
                timings["first_token_ms"] = round((time.perf_counter() - started) * 1000, 3)
                continue
            if isinstance(event, StreamError):
                usage = event.usage.model_dump()
                count_citations(verifier.seen, verifier.dropped)
                yield Spent(usage["total_tokens"])
                yield Failed(
                    event.code,
                    "the model stopped mid-answer; every sentence shown was verified",
                    usage,
                )
                return
            if isinstance(event, StreamClaim):  # structured: one claim with its quote
                if event.spent:
                    yield Spent(event.spent)
                text, new = verifier.verify(from_structured(event.text, event.source, event.quote))
                if text is not None:
                    released += 1
                    yield Sentence(text, new)
                continue
            if isinstance(event, StreamEnd):
                usage = event.usage.model_dump()
                verifier.seen += event.malformed_claims  # claims that broke the schema: dropped
                verifier.dropped += event.malformed_claims
                complete, pending = pending, ""
            else:
                assert isinstance(event, StreamDelta)
                pending += event.text
                if event.spent:
                    yield Spent(event.spent)
                complete, pending = complete_prefix(pending)
            if (
                not released
                and not abstained
                and (complete + pending).lstrip().startswith(ABSTAIN_TEXT)
            ):
                abstained = True  # the model's own abstention: its exact sentence, nothing else
            if abstained:
                continue
            for claim in split_claims(complete):
                text, new = verifier.verify(claim)
                if text is not None:
                    released += 1
                    yield Sentence(text, new)
    except (ValueError, ValidationError) as exc:
        raise UpstreamError(f"llm Worker stream breaks its contract: {exc}") from exc
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    count_citations(verifier.seen, verifier.dropped)
    timings["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
    yield Spent(usage["total_tokens"])
    if abstained or not released:
        yield Sentence(ABSTAIN_TEXT, [])
        yield Finished(usage, 0.0, True, [], by, timings, verifier.dropped)
        return
    cited = {c.chunk_id for c in verifier.citations}
    yield Finished(
        usage,
        confidence(
            hits,
            verifier.seen,
            verifier.dropped,
            request.query,
            (c.quote for c in verifier.citations),
        ),
        False,
        follow_ups(request.query, hits, cited),
        by,
        timings,
        verifier.dropped,
    )


async def _llm_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[BaseModel]:
    async for event in sse.parse(chunks):
        model = LLM_STREAM_EVENTS.get(event.event)
        if model is None:
            continue  # an event a newer llm Worker added
        yield model.model_validate_json(event.data)
