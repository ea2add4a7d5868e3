"""The OpenAI-compatible surface: `POST /v1/chat/completions` and `GET /v1/models[/{model}]` in
OpenAI's shapes, plus edgerag's additions on the assistant message (`citations`, `edgerag`).

Requests are strict like every edgerag request (a field nobody declared is a 422 naming it),
but they declare the parameters OpenAI clients commonly send — sampling, limits, `user`,
`metadata`, `tools` … — and accept them without effect: a verified answer is not sampled.
What edgerag cannot honour is a 422 naming the field, never silently dropped: `n` > 1,
`logprobs`, JSON response formats, a forced tool call.

The conversation is the client's: the last message is the question (a user message); earlier
user and assistant messages are history, used to make a follow-up self-contained for retrieval.
System and developer messages are accepted and not obeyed: edgerag's grounded prompt is the only
instruction its model gets (docs/decisions.md). Tool messages are history nobody reads.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from kernel.contracts.api import (
    MAX_QUERY_CHARS,
    Citation,
    GeneratedBy,
    SearchFilters,
    Strict,
)

Mode = Literal["dense", "keyword", "hybrid"]
# Each model is the caller's knowledge base answering with one retrieval mode (rerank on).
MODELS: dict[str, tuple[Mode, str]] = {
    "edgerag": ("hybrid", "dense and keyword retrieval fused, reranked"),
    "edgerag-keyword": ("keyword", "keyword (BM25) retrieval only, reranked"),
    "edgerag-dense": ("dense", "dense (embedding) retrieval only, reranked"),
}
# OpenAI's `created` is when a model was made; these have no weights of their own, so one fixed
# instant (2026-12-01T00:00:00Z) keeps the list the same on every call.
MODELS_CREATED = 1_796_083_200
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000  # history beyond the question is only read for follow-up terms


def text_of(content: Any, *, what: str = "content") -> str | None:
    """A message's content as text: a string, or the text of its `text` parts (joined by a
    newline); any other part (an image, audio, a file) is refused rather than ignored."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError(f"{what} is a string or a list of text parts")
    texts: list[str] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])  # an assistant's earlier refusal, as OpenAI stores it
            continue
        if kind != "text" or not isinstance(part.get("text"), str):
            raise ValueError(f"part {i} is {kind!r}: edgerag reads text parts only")
        texts.append(part["text"])
    return "\n".join(texts)


def check_question(role: str, text: str | None) -> None:
    """The last message is the question: the user's, with words, within a query's length."""
    if role != "user":
        raise ValueError(f"the last message is the question: a user message (got {role!r})")
    if not (text or "").strip():
        raise ValueError("the last message (the question) has no text")
    if len(text or "") > MAX_QUERY_CHARS:
        raise ValueError(f"the question is over {MAX_QUERY_CHARS} characters")


class OpenAIMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)
    name: str | None = Field(default=None, max_length=256)
    # An assistant's earlier tool calls and a tool's reply: kept as history, not used.
    tool_calls: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=256)
    function_call: dict[str, Any] | None = None
    refusal: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)

    @field_validator("content", mode="before")
    @classmethod
    def as_text(cls, value: Any) -> str | None:
        return text_of(value)


class StreamOptions(Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None  # OpenAI's padding against length side channels


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


Unit = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class OpenAIChatRequest(Strict):
    model: str = Field(min_length=1, max_length=200)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False  # OpenAI's default: one JSON reply
    stream_options: StreamOptions | None = None
    # edgerag's extension (the SDK's `extra_body`): narrow retrieval as /v1/search does.
    filters: SearchFilters | None = None
    # Accepted without effect: the answer is written by the grounded pipeline and verified.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: Unit | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = Field(default=None, max_length=512)
    safety_identifier: str | None = Field(default=None, max_length=512)
    prompt_cache_key: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = Field(default=None, max_length=40)
    reasoning_effort: str | None = Field(default=None, max_length=40)
    verbosity: str | None = Field(default=None, max_length=40)
    modalities: list[Literal["text"]] | None = None
    parallel_tool_calls: bool | None = None
    # The client's tools are never called (docs/decisions.md): "auto" lets the model decline.
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    function_call: str | dict[str, Any] | None = None
    # Honoured only where edgerag can: refused otherwise (validators below).
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None

    @field_validator("n")
    @classmethod
    def one_answer(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("edgerag writes one verified answer per request: n must be 1")
        return value

    @field_validator("logprobs")
    @classmethod
    def no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("edgerag's answers are assembled from verified sentences: no logprobs")
        return value

    @field_validator("response_format")
    @classmethod
    def text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") != "text":
            raise ValueError("edgerag answers in text with citations: only {'type': 'text'}")
        return value

    @field_validator("tool_choice", "function_call")
    @classmethod
    def never_forced(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if value is not None and value not in ("auto", "none"):
            raise ValueError(
                "edgerag never calls a client's tools, so it cannot be made to:"
                " only 'auto' or 'none'"
            )
        return value

    @field_validator("tools", "functions")
    @classmethod
    def bounded(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None and _json_size(value) > 256 * 1024:
            raise ValueError("tool declarations are over 256 KiB")
        return value

    @field_validator("messages")
    @classmethod
    def ends_with_a_question(cls, messages: list[OpenAIMessage]) -> list[OpenAIMessage]:
        check_question(messages[-1].role, messages[-1].content)
        return messages

    def question(self) -> str:
        return self.messages[-1].content or ""

    def history(self) -> list[dict[str, str]]:
        """Earlier user and assistant turns with text (system, developer and tool messages are
        not turns of the reader's conversation)."""
        return [
            {"role": m.role, "content": m.content}
            for m in self.messages[:-1]
            if m.role in ("user", "assistant") and m.content
        ]


# --- replies ---------------------------------------------------------------------------------
class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str  # the tenant: a model is its knowledge base


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class AnswerExtras(BaseModel):
    """edgerag's view of the answer, as /v1/answer reports it."""

    confidence: float
    abstained: bool
    follow_ups: list[str]
    intent: str | None = None
    retrieval_query: str
    dropped_sentences: int = 0
    generated_by: GeneratedBy | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str  # the answer, its [n] markers, and a "Sources:" list (rag.references)
    refusal: None = None
    citations: list[Citation]  # the verified citations the markers number, as /v1/answer's
    edgerag: AnswerExtras


class CompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class OpenAIChatCompletion(BaseModel):
    id: str  # chatcmpl-<request id>: the same id the logs carry
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    citations: list[Citation] | None = None  # on the chunk that finishes the answer
    edgerag: AnswerExtras | None = None  # likewise


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class OpenAIChatChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]  # [] on the usage chunk (stream_options.include_usage)
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


DONE = b"data: [DONE]\n\n"


def data_event(payload: Any) -> bytes:
    """One data-only server-sent event, as OpenAI streams them."""
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def stream_error(code: str, message: str) -> bytes:
    """How an OpenAI stream fails after it started: `data: {"error": …}` — the SDKs raise it.
    Used by the rag Worker (the model stopped) and the gateway (the budget ran out)."""
    return data_event({"error": {"code": code, "message": message, "type": code}})
