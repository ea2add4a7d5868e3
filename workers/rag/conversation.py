"""A conversation the client keeps (OpenAI chat messages, AI SDK UI messages), answered by the
same path as a chat session's message — without a session: nothing is stored, the client sends
the history each time.

The last user message is the question. As in chat, a follow-up is made self-contained for
retrieval with the previous question (rag.chat.rewrite_follow_up), the question is classified
once on the user's own words (rag.understanding), and the answer is rag.answer's (JSON) or
rag.live's (streamed): retrieval, generation, and every sentence verified against the stored
chunks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kernel.bindings.env import Bindings
from kernel.contracts.api import MAX_QUERY_CHARS, AnswerRequest, AnswerResponse, SearchFilters
from kernel.contracts.openai import MODELS, AnswerExtras
from kernel.contracts.rag import Mode
from kernel.domain.tenancy import TenantDB, TenantScope, scope_from_request
from kernel.runtime.errors import NotFound
from kernel.runtime.http import Request
from rag import chat, progress
from rag.answer import answer
from rag.cache import Caches, cached_embedder
from rag.live import Finished, Item, open_live
from rag.search import Embedder
from rag.understanding import Understanding, understand

_WORDS = re.compile(r"\s*\S+")  # each word with the space before it


def mode_of(model: str) -> Mode:
    """The retrieval mode a model id names; an id that names none is a 404 `model_not_found`."""
    if model not in MODELS:
        raise NotFound(
            f"model {model[:100]!r} does not exist; GET /v1/models lists {', '.join(MODELS)}",
            code="model_not_found",
        )
    return MODELS[model][0]


@dataclass(frozen=True)
class Conversation:
    question: str
    history: list[dict[str, str]]  # earlier {role: user | assistant, content}, oldest first
    model: str
    filters: SearchFilters | None = None


@dataclass(frozen=True)
class Turn:
    """A question ready to answer: retrieval query, classification, the caller's scope."""

    scope: TenantScope
    ask: AnswerRequest
    embed: Embedder
    understood: Understanding
    mode: Mode

    @property
    def retrieval_query(self) -> str:
        return self.ask.query


async def prepare(b: Bindings, request: Request, talk: Conversation) -> Turn:
    mode = mode_of(talk.model)
    scope = scope_from_request(request)
    db = TenantDB(b.need(b.db, "DB"), scope)
    await progress.asked(db, scope.viewer)
    rewritten = chat.rewrite_follow_up(talk.question, talk.history[-chat.HISTORY_TURNS :])
    ask = AnswerRequest(query=rewritten[:MAX_QUERY_CHARS], filters=talk.filters)
    embed = cached_embedder(b, Caches(b.kv, db, "rag"))
    return Turn(scope, ask, embed, await understand(talk.question, embed), mode)


async def answered(b: Bindings, request: Request, talk: Conversation, turn: Turn) -> AnswerResponse:
    return await answer(
        b,
        turn.scope,
        turn.ask,
        turn.embed,
        request.request_id,
        question=talk.question,
        understood=turn.understood,
        mode=turn.mode,
    )


async def streamed(
    b: Bindings, request: Request, talk: Conversation, turn: Turn
) -> AsyncIterator[Item]:
    """rag.live's items; opened before the reply starts, so a failure is still a JSON error."""
    return await open_live(
        b,
        turn.scope,
        turn.ask,
        turn.embed,
        request.request_id,
        question=talk.question,
        understood=turn.understood,
        mode=turn.mode,
    )


def words(sentence: str, released: int) -> list[str]:
    """A verified sentence as stream deltas, word by word; after the first sentence (`released`
    > 0) it starts with the space that joins it to the one before — so the deltas join into
    exactly the JSON answer's text, sentences separated by one space."""
    parts = _WORDS.findall(sentence)
    if parts and released:
        parts[0] = " " + parts[0]
    return parts


def extras(done: Finished, retrieval_query: str) -> AnswerExtras:
    """What a finished live answer tells besides its text (the `done` event's fields)."""
    return AnswerExtras(
        confidence=done.confidence,
        abstained=done.abstained,
        follow_ups=done.follow_ups,
        intent=done.intent,
        retrieval_query=retrieval_query,
        dropped_sentences=done.dropped,
        generated_by=done.generated_by,
    )
