"""The llm Worker's internal contract: `POST /generate`, as the rag Worker calls it.

Both sides import these models: the rag Worker builds the request body from `GenerateRequest`
and reads the reply through `GenerateResponse`; the llm Worker parses the one and answers with
the other's `model_dump()`. Requests are strict (a typo is a 422); replies ignore fields they do
not know, so a newer llm Worker can add one without breaking an older rag Worker mid-deploy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kernel.contracts.analyzer import AnalyzerRequest
from kernel.contracts.api import ProviderAttempt, Strict

__all__ = [
    "LLM_STREAM_EVENTS",
    "AgentMessage",
    "AgentRequest",
    "AgentResponse",
    "AgentToolCall",
    "AnalyzeRequest",
    "GenerateRequest",
    "GenerateResponse",
    "GeneratedClaim",
    "Plan",
    "PlanRequest",
    "ProviderAttempt",
    "Source",
    "StreamClaim",
    "StreamDelta",
    "StreamEnd",
    "StreamError",
    "StreamStart",
    "TaskRequest",
    "TaskResponse",
    "Turn",
    "Usage",
]


class Source(Strict):
    n: int = Field(ge=1)  # the number the model cites, [n]
    text: str = Field(min_length=1)


class Turn(Strict):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class GenerateRequest(Strict):
    question: str = Field(min_length=1, max_length=4000)
    sources: list[Source] = Field(max_length=20)
    selected_text: str | None = Field(default=None, max_length=8000)
    history: list[Turn] = Field(default_factory=list, max_length=20)
    # "summarize": the question is `prompt_format.summary_question` and the claims summarize
    # the sources (a summary's own system prompt and schema); verified like any answer.
    task: Literal["answer", "summarize"] = "answer"
    # The reader's level (their user context): the register the answer is written in.
    level: Literal["beginner", "intermediate", "advanced"] | None = None
    max_tokens: int = Field(default=400, ge=16, le=2048)
    # True: the reply is a `text/event-stream` of the LLM_STREAM_EVENTS below, tokens as the
    # provider produces them. Errors before the first token are still plain JSON errors.
    stream: bool = False
    # True: ask for claims with verbatim quotes where the provider supports structured output
    # (llm.claims); providers without it, and Workers AI streams, answer with [n] markers.
    structured: bool = True
    # The tenant's allowed providers / models (tenant settings): the operator's chain is only
    # ever narrowed by them, never extended. None: the whole chain.
    providers: list[str] | None = Field(default=None, max_length=10)
    models: list[str] | None = Field(default=None, max_length=20)


class Usage(BaseModel):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class GeneratedClaim(BaseModel):
    """One claim of a structured answer: a sentence, the source it comes from and the words of
    that source that support it — checked by the rag Worker's verifier like any citation."""

    text: str
    source: int
    quote: str


class GenerateResponse(BaseModel):
    text: str  # the answer with [n] markers (rendered from `claims` when there are claims)
    model: str  # the model that wrote `text` ("none" when there was nothing to ask)
    provider: str
    usage: Usage
    tried: list[ProviderAttempt] = Field(default_factory=list)  # the chain, in order
    # The structured answer when the provider gave one ([] = it found no answer); None when
    # the text carries [n] markers instead. Claims that broke the schema are dropped, counted.
    claims: list[GeneratedClaim] | None = None
    malformed_claims: int = 0


# --- the stream: start, delta… (or claim…), then end or error ------------------------------------------
class StreamStart(BaseModel):
    """Sent with the first token: who is answering and how long the first token took."""

    provider: str
    model: str
    tried: list[ProviderAttempt] = Field(default_factory=list)
    ttft_ms: float


class StreamDelta(BaseModel):
    text: str
    spent: int = 0  # tokens spent so far (prompt + completion, estimated): for live budgets


class StreamClaim(GeneratedClaim):
    """A structured answer's claim, sent as soon as the provider has written all of it."""

    spent: int = 0


class StreamEnd(BaseModel):
    usage: Usage
    malformed_claims: int = 0  # structured claims that broke the schema (dropped)


class StreamError(BaseModel):
    """The provider failed after its first token (no fallback then: text was released)."""

    code: str
    message: str
    usage: Usage  # what was spent until the failure (charged all the same)


LLM_STREAM_EVENTS: dict[str, type[BaseModel]] = {
    "start": StreamStart,
    "delta": StreamDelta,
    "claim": StreamClaim,
    "end": StreamEnd,
    "error": StreamError,
}


# --- /task: structured extraction from a text --------------------------------------------------
class TaskType(Strict):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=1, max_length=300)


class TextBlock(Strict):
    """One block of a section: a heading, paragraph, list item or code block, as written."""

    kind: Literal["heading", "paragraph", "list_item", "code", "note"]
    text: str = Field(max_length=20_000)


class TaskRequest(Strict):
    """`POST /task`: one structured-output job over `text` (the model's reply is an object of
    the task's schema, `llm.tasks`). The caller checks the object against the text."""

    task: Literal["extract_entities", "tag_document", "personalize", "translate", "feedback"]
    text: str = Field(default="", max_length=40_000)  # extract_entities, tag_document
    types: list[TaskType] = Field(default_factory=list, max_length=30)  # entity types
    max_items: int = Field(default=10, ge=1, le=100)  # tags to suggest
    sources: list[Source] = Field(default_factory=list, max_length=60)  # personalize
    level: Literal["beginner", "intermediate", "advanced"] | None = None  # personalize
    blocks: list[TextBlock] = Field(default_factory=list, max_length=200)  # translate
    language: str | None = Field(default=None, max_length=35)  # translate: BCP-47
    # feedback: the recording's measured dimensions and segments (sources: the knowledge base)
    analysis: dict[str, Any] | None = None
    focus: str | None = Field(default=None, max_length=200)
    max_tokens: int = Field(default=600, ge=16, le=4000)
    providers: list[str] | None = Field(default=None, max_length=10)
    models: list[str] | None = Field(default=None, max_length=20)


class TaskResponse(BaseModel):
    output: dict[str, Any]  # an object of the task's schema (shape checked, content not)
    model: str
    provider: str
    usage: Usage
    tried: list[ProviderAttempt] = Field(default_factory=list)


# --- /agent: one step of a tool-calling conversation --------------------------------------------
class AgentToolCall(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(max_length=200)
    # As the model wrote them: anything (the rag Worker's dispatcher validates them against the
    # tool's schema). Arguments that were not a JSON object arrive as {"_unparsed": "<text>"}.
    arguments: dict[str, Any]


class AgentMessage(Strict):
    role: Literal["user", "assistant", "tool"]
    content: str = Field(default="", max_length=40_000)
    tool_calls: list[AgentToolCall] = Field(default_factory=list, max_length=8)  # assistant
    tool_call_id: str | None = Field(default=None, max_length=200)  # tool
    name: str | None = Field(default=None, max_length=200)  # tool: which tool answered
    is_error: bool = False  # tool: the call was refused or failed


class ToolDeclaration(Strict):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(max_length=2000)
    parameters: dict[str, Any]


class AgentRequest(Strict):
    messages: list[AgentMessage] = Field(min_length=1, max_length=60)
    tools: list[ToolDeclaration] = Field(min_length=1, max_length=30)
    max_tokens: int = Field(default=500, ge=16, le=2048)
    level: Literal["beginner", "intermediate", "advanced"] | None = None
    providers: list[str] | None = Field(default=None, max_length=10)
    models: list[str] | None = Field(default=None, max_length=20)


class AgentResponse(BaseModel):
    # False: no provider in the (narrowed) chain does function calling; the caller answers
    # with retrieval only.
    supported: bool = True
    text: str = ""
    tool_calls: list[AgentToolCall] = Field(default_factory=list)
    model: str = "none"
    provider: str = "none"
    usage: Usage = Field(
        default_factory=lambda: Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    )
    tried: list[ProviderAttempt] = Field(default_factory=list)


# --- /plan: which provider and model would answer now (cache keys name the model) -------------
class PlanRequest(Strict):
    providers: list[str] | None = Field(default=None, max_length=10)
    models: list[str] | None = Field(default=None, max_length=20)


class Plan(BaseModel):
    provider: str  # "none": nobody can answer now
    model: str


# --- /analyze: a recording through the tenant's or the deployment's analyzer (llm.analyzer) ----
class AnalyzeRequest(Strict):
    """`analyzer_url`: the tenant's own (https) analyzer, or None for the deployment's
    (EDGERAG_ANALYZER_URL). The reply is the analyzer's `AnalyzerResponse`, checked."""

    analyzer_url: str | None = Field(default=None, max_length=2048)
    request: AnalyzerRequest
