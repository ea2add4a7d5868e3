"""The rag Worker's internal contract: each route's request and reply, and the usage header.

The gateway forwards public bodies unchanged (SearchRequest, AnswerRequest, ChatMessageRequest
are the public models); the rag Worker answers through the reply models here, so
tests/contract/test_rag_routes.py fails when one side renames a field. Replies ignore fields they
do not know, so a newer Worker can add one without breaking an older caller mid-deploy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from kernel.contracts.api import (
    MAX_QUERY_CHARS,
    AnswerRequest,
    AnswerResponse,
    ChatMessageRequest,
    Citation,
    CreateSession,
    GeneratedBy,
    SearchRequest,
    SearchResponse,
    Strict,
)

__all__ = [
    "USAGE_HEADER",
    "AnswerRequest",
    "AnswerResponse",
    "CacheCleared",
    "ChatAnswer",
    "ChatMessage",
    "ChatMessageRequest",
    "CitationEvent",
    "CreateSession",
    "DoneEvent",
    "ErrorEvent",
    "EvalReport",
    "EvalRequest",
    "GoldenQuestion",
    "SearchRequest",
    "SearchResponse",
    "SessionCreated",
    "SessionDeleted",
    "SessionDetail",
    "SessionList",
    "SessionSummary",
    "SpentEvent",
    "TokenEvent",
]

# Tokens the model spent on this request (0 when the answer came from the cache), on every
# JSON /answer and chat message reply. A streamed reply spends as it goes: it reports through
# internal `usage` events instead (SpentEvent), which the gateway reads and removes.
USAGE_HEADER = "x-edgerag-usage-tokens"
# "true" on a reply served from a cache: the gateway gives back its rate-limit hit
# (personalize, translate, tts: a chapter is never paid for twice, in tokens or in limits).
CACHED_HEADER = "x-edgerag-cached"


# --- /eval ---------------------------------------------------------------------------------
Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")
MAX_QUESTIONS = 200
MAX_RELEVANT = 1000  # relevant ids per question
MAX_GRADE = 100


def dedupe(items: Iterable[str]) -> list[str]:
    """Items in first-seen order, each once."""
    return list(dict.fromkeys(items))


class GoldenQuestion(Strict):
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    relevant_document_ids: list[str] = Field(min_length=1, max_length=MAX_RELEVANT)
    # Optional graded relevance (id -> 1..100) for nDCG; ids without a grade count as 1.
    grades: dict[str, int] | None = None

    @field_validator("question")
    @classmethod
    def has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty after removing whitespace")
        return value

    @field_validator("relevant_document_ids")
    @classmethod
    def distinct_ids(cls, ids: list[str]) -> list[str]:
        if any(not i or len(i) > 128 for i in ids):
            raise ValueError("each document id is 1-128 characters")
        return dedupe(ids)

    @model_validator(mode="after")
    def grades_match(self) -> GoldenQuestion:
        if self.grades:
            unknown = sorted(set(self.grades) - set(self.relevant_document_ids))
            if unknown:
                raise ValueError(
                    f"grades names ids that are not in relevant_document_ids: {unknown[:3]}"
                )
            if any(not 1 <= g <= MAX_GRADE for g in self.grades.values()):
                raise ValueError(f"each grade is an integer from 1 to {MAX_GRADE}")
        return self

    def qrels(self) -> dict[str, int]:
        grades = self.grades or {}
        return {doc: grades.get(doc, 1) for doc in self.relevant_document_ids}


class EvalRequest(Strict):
    """`POST /eval` body: the tenant's golden set and which retrievers to score."""

    questions: list[GoldenQuestion] = Field(min_length=1, max_length=MAX_QUESTIONS)
    modes: list[Mode] = Field(default_factory=lambda: list(MODES), min_length=1, max_length=3)
    per_question: bool = False  # also return each question's metrics (to find the bad ones)

    @field_validator("modes")
    @classmethod
    def distinct_modes(cls, modes: list[Mode]) -> list[Mode]:
        return [m for m in MODES if m in modes]


class EvalReport(BaseModel):
    questions: int
    skipped: int  # questions without any relevant document cannot be scored
    depth: int
    modes: dict[str, dict[str, float]]  # mode -> metric -> macro average
    per_question: list[dict[str, Any]] | None = None


# --- caches --------------------------------------------------------------------------------
class CacheCleared(BaseModel):
    removed: int


# --- chat ----------------------------------------------------------------------------------
class SessionCreated(BaseModel):
    session_id: str
    title: str | None
    tools: bool = False
    write_tools: bool = False


class SessionSummary(BaseModel):
    id: str
    title: str | None
    created_at: str
    updated_at: str
    tools: bool = False
    write_tools: bool = False


class SessionList(BaseModel):
    sessions: list[SessionSummary]


class ChatMessage(BaseModel):
    seq: int
    role: Literal["user", "assistant"]
    content: str
    status: str  # complete | streaming | partial | error
    citations: list[Citation]
    meta: dict[str, Any]
    created_at: str


class SessionDetail(SessionSummary):
    messages: list[ChatMessage]


class SessionDeleted(BaseModel):
    session_id: str
    deleted: bool


class ToolStep(BaseModel):
    """One tool call the model made in a chat turn, and what it got back."""

    id: str
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: dict[str, Any] | None = None  # the tool's result (cut to MAX_STORED_RESULT)
    error: dict[str, Any] | None = None  # {code, message} when the call was refused or failed
    audit_id: str | None = None


class ChatAnswer(AnswerResponse):
    session_id: str
    retrieval_query: str
    tool_calls: list[ToolStep] = Field(default_factory=list)  # agentic sessions
    step_limit_reached: bool = False


class ToolCallEvent(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]


class ToolResultEvent(BaseModel):
    id: str
    name: str
    ok: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


# SSE: `event: <name>` lines whose `data:` is the model of that name.
class TokenEvent(BaseModel):
    text: str


CitationEvent = Citation


class DoneEvent(BaseModel):
    usage: dict[str, int]
    confidence: float
    abstained: bool
    follow_ups: list[str]
    generated_by: GeneratedBy | None = None
    dropped_sentences: int = 0  # citation markers the verifier refused (their sentences unshown)
    intent: str | None = None
    rewritten_query: str | None = None


class SpentEvent(BaseModel):
    """Internal: tokens spent so far. The gateway charges budgets from these and removes them
    from the stream it forwards; clients never see one."""

    tokens: int = Field(ge=0)


class ErrorEvent(BaseModel):
    code: str
    message: str


STREAM_EVENTS: dict[str, type[BaseModel]] = {
    "token": TokenEvent,
    "citation": CitationEvent,
    "done": DoneEvent,
    "error": ErrorEvent,
    "usage": SpentEvent,
    "tool_call": ToolCallEvent,
    "tool_result": ToolResultEvent,
}
INTERNAL_EVENTS = frozenset({"usage"})
