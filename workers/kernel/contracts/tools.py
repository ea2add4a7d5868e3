"""Tools, declared once: name, description, the JSON Schema of the arguments and of the result,
who may call it, whether it writes, its rate-limit class and its timeout.

Both the gateway (rate-limit class and token budget of `POST /v1/tools/{name}`, the OpenAPI
file) and the rag Worker (the dispatcher and the tool loop of agentic chat) read `TOOLS`. The
argument models are strict: an unknown field, a wrong type or an oversized string is a 422
naming the field, whether a client or a model sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from kernel.contracts.api import (
    MAX_TITLE_CHARS,
    Citation,
    EntityType,
    GeneratedBy,
    IntentLabel,
    Label,
    QueryText,
    SearchFilters,
    Strict,
    Visibility,
)

ALL_ROLES = frozenset({"admin", "teacher", "student"})
WRITERS = frozenset({"admin", "teacher"})
DocumentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
MAX_TOOL_TEXT = 20_000  # characters a tool reads from its arguments


# --- search_knowledge_base ---------------------------------------------------------------------
class SearchArgs(Strict):
    query: QueryText
    top_k: int = Field(default=5, ge=1, le=20)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: SearchFilters | None = None


class Passage(BaseModel):
    n: int
    document_id: str
    chunk_id: str
    title: str
    text: str
    score: float
    page: int | None = None
    char_start: int | None = None
    char_end: int | None = None


class SearchResult(BaseModel):
    passages: list[Passage]


# --- get_document ------------------------------------------------------------------------------
class GetDocumentArgs(Strict):
    document_id: DocumentId
    # A heading ("Photosynthesis") or heading path ("Plants > Photosynthesis"), or a page.
    section: Annotated[Label, Field(min_length=1, max_length=1024)] | None = None
    page: int | None = Field(default=None, ge=1, le=100_000)
    max_chars: int = Field(default=4000, ge=200, le=MAX_TOOL_TEXT)

    @model_validator(mode="after")
    def one_locator(self) -> GetDocumentArgs:
        if self.section is not None and self.page is not None:
            raise ValueError("send at most one of `section` or `page`")
        return self


class SectionInfo(BaseModel):
    path: list[str]
    level: int
    char_start: int
    char_end: int
    page_start: int | None = None
    page_end: int | None = None


class SectionText(SectionInfo):
    text: str
    truncated: bool


class DocumentInfo(BaseModel):
    id: str
    title: str
    visibility: str
    owner_id: str | None = None
    tags: list[str]
    metadata: dict[str, Any]
    status: str | None = None
    live_version: int | None = None
    page_count: int | None = None
    text_length: int | None = None


class GetDocumentResult(BaseModel):
    document: DocumentInfo
    sections: list[SectionInfo]
    section: SectionText | None = None  # the one asked for; the start of the text otherwise


# --- user context ------------------------------------------------------------------------------
Level = Literal["beginner", "intermediate", "advanced"]
Item = Annotated[Label, Field(min_length=1, max_length=200)]
LanguageTag = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]


class UserContextBody(Strict):
    """`PUT /v1/me/context`: replaces the caller's context (≤ ~8 KB in all)."""

    level: Level | None = None
    goals: list[Item] = Field(default_factory=list, max_length=10)
    constraints: list[Item] = Field(default_factory=list, max_length=10)
    interests: list[Item] = Field(default_factory=list, max_length=20)  # or a repertoire
    preferred_language: LanguageTag | None = None
    notes: str | None = Field(default=None, max_length=2000)


class UserContext(UserContextBody):
    user_id: str
    updated_at: str | None = None  # None: never set (the defaults)


class GetUserContextArgs(Strict):
    user_id: UserId | None = None  # None: the caller; a teacher may name one of their students


# --- summarize ---------------------------------------------------------------------------------
class SummarizeArgs(Strict):
    document_id: DocumentId | None = None
    section: Annotated[Label, Field(min_length=1, max_length=1024)] | None = None
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TOOL_TEXT)
    length: Literal["short", "medium", "long"] = "short"
    format: Literal["paragraph", "bullets"] = "paragraph"

    @model_validator(mode="after")
    def one_source(self) -> SummarizeArgs:
        if (self.document_id is None) == (self.text is None):
            raise ValueError("send exactly one of `document_id` or `text`")
        if self.section is not None and self.document_id is None:
            raise ValueError("`section` needs `document_id`")
        return self


class SummarySentence(BaseModel):
    text: str
    citations: list[int] = Field(default_factory=list)  # numbers into `citations`


class SummarizeResult(BaseModel):
    summary: str
    format: str
    sentences: list[SummarySentence]
    citations: list[Citation]  # verified spans of the stored document (none for `text`)
    dropped_sentences: int = 0  # model sentences whose quote was not in the source
    generated_by: GeneratedBy | None = None


# --- extract_entities --------------------------------------------------------------------------
BUILTIN_ENTITY_TYPES = ("person", "place", "organization", "date")


class ExtractEntitiesArgs(Strict):
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TOOL_TEXT)
    document_id: DocumentId | None = None
    types: list[Name] | None = Field(default=None, min_length=1, max_length=20)  # None: all
    custom_types: list[EntityType] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def one_source(self) -> ExtractEntitiesArgs:
        if (self.document_id is None) == (self.text is None):
            raise ValueError("send exactly one of `document_id` or `text`")
        return self


class Entity(BaseModel):
    text: str
    type: str
    char_start: int  # the first occurrence in the text
    char_end: int
    count: int


class ExtractEntitiesResult(BaseModel):
    entities: list[Entity]
    types: list[str]
    dropped: int = 0  # entities the model named that are not in the text
    generated_by: GeneratedBy | None = None


# --- classify_intent ---------------------------------------------------------------------------
DEFAULT_INTENTS = (
    IntentLabel(name="question", description="asks for a fact or an explanation"),
    IntentLabel(name="summary_request", description="asks to summarize or condense material"),
    IntentLabel(name="comparison", description="asks how two or more things differ or compare"),
    IntentLabel(name="small_talk", description="greeting, thanks or chit-chat, no information"),
    IntentLabel(name="out_of_scope", description="unrelated to learning or the documents"),
)


class ClassifyIntentArgs(Strict):
    text: str = Field(min_length=1, max_length=4000)
    labels: list[IntentLabel] | None = Field(default=None, min_length=2, max_length=30)
    multi_label: bool = False
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class LabelScore(BaseModel):
    label: str
    confidence: float


class ClassifyIntentResult(BaseModel):
    labels: list[LabelScore]  # the chosen ones (one, or every one above threshold)
    scores: list[LabelScore]  # every label, best first
    method: str  # "model" or "embedding similarity"
    generated_by: GeneratedBy | None = None


# --- tag_document ------------------------------------------------------------------------------
class TagDocumentArgs(Strict):
    document_id: DocumentId
    apply: bool = False  # write the suggestion (the owner or an admin only)
    max_tags: int = Field(default=5, ge=1, le=10)


class TagDocumentResult(BaseModel):
    document_id: str
    suggested_tags: list[str]
    suggested_metadata: dict[str, Any]
    applied: bool
    tags: list[str]  # the document's tags now
    generated_by: GeneratedBy | None = None


# --- ingest_document ---------------------------------------------------------------------------
class IngestDocumentArgs(Strict):
    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)]
    text: str | None = Field(default=None, min_length=1, max_length=200_000)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    visibility: Visibility = "tenant"
    tags: list[Annotated[Label, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=32
    )

    @model_validator(mode="after")
    def one_source(self) -> IngestDocumentArgs:
        if (self.text is None) == (self.url is None):
            raise ValueError("send exactly one of `text` or `url`")
        return self


class IngestDocumentResult(BaseModel):
    document_id: str
    version: int
    status: str


# --- the registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[Strict]
    result: type[BaseModel]
    roles: frozenset[str] = ALL_ROLES
    writes: bool = False
    rate: str = "api"  # the gateway's rate-limit class for a direct call
    spends_tokens: bool = False  # calls a model: held to the tenant's token budget
    timeout_s: float = 20.0

    def declaration(self) -> dict[str, Any]:
        """What `GET /v1/tools` lists: ready to hand to a function-calling model."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.args.model_json_schema(),
            "result": self.result.model_json_schema(),
            "access": "write" if self.writes else "read",
            "roles": sorted(self.roles),
            "rate_class": self.rate,
            "timeout_s": self.timeout_s,
        }


# --- get_performance_analysis ---------------------------------------------------------------
RecordingId = Annotated[str, Field(pattern=r"^rec_[0-9a-f]{24}$")]


class PerformanceArgs(Strict):
    """One recording, or a user's latest analysed recordings (default: the caller's own)."""

    recording_id: RecordingId | None = None
    user_id: UserId | None = None
    limit: int = Field(default=5, ge=1, le=20)


class PerformanceDimension(BaseModel):
    name: str
    label: str
    group: str
    score: float
    uncertainty: float
    graded: bool = True
    value: float | None = None
    unit: str | None = None


class RecordingPerformance(BaseModel):
    recording_id: str
    title: str
    owner_id: str
    recorded_at: str
    duration_s: float | None
    analysis_id: str | None  # None: not analysed yet
    analyzer: str | None = None
    dimensions: list[PerformanceDimension] = []
    unmeasured: list[str] = []


class Trend(BaseModel):
    """A dimension over the recordings listed, oldest to newest."""

    name: str
    label: str
    scores: list[float]
    change: float  # newest − oldest


class PerformanceResult(BaseModel):
    recordings: list[RecordingPerformance]  # newest first
    trends: list[Trend]


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "search_knowledge_base",
            "Hybrid (dense + keyword) search of the knowledge base, within the documents the"
            " caller may read. Returns numbered passages with their document and character span.",
            SearchArgs,
            SearchResult,
            rate="search",
            timeout_s=15.0,
        ),
        ToolSpec(
            "get_document",
            "A document's metadata, its outline of sections, and the text of one section"
            " (by heading or page) or of its beginning.",
            GetDocumentArgs,
            GetDocumentResult,
            timeout_s=10.0,
        ),
        ToolSpec(
            "get_user_context",
            "The learner's context: level, goals, constraints, interests, preferred language"
            " and notes. A teacher may read one of their students'.",
            GetUserContextArgs,
            UserContext,
            timeout_s=5.0,
        ),
        ToolSpec(
            "summarize",
            "Summarize a stored document (or one section) or a given text, short/medium/long,"
            " as a paragraph or bullets; a document's summary cites the spans it comes from.",
            SummarizeArgs,
            SummarizeResult,
            rate="answer",
            spends_tokens=True,
            timeout_s=60.0,
        ),
        ToolSpec(
            "extract_entities",
            "People, places, organizations and dates (and the tenant's own entity types) named"
            " in a text or stored document, each with where it first occurs.",
            ExtractEntitiesArgs,
            ExtractEntitiesResult,
            rate="answer",
            spends_tokens=True,
            timeout_s=60.0,
        ),
        ToolSpec(
            "classify_intent",
            "Classify a message into intent labels with confidences: the default set (question,"
            " summary_request, comparison, small_talk, out_of_scope), the tenant's, or given.",
            ClassifyIntentArgs,
            ClassifyIntentResult,
            rate="search",
            timeout_s=15.0,
        ),
        ToolSpec(
            "tag_document",
            "Suggest tags and metadata for a document; with apply=true, write them (the"
            " document's owner or an admin).",
            TagDocumentArgs,
            TagDocumentResult,
            rate="answer",
            spends_tokens=True,
            timeout_s=60.0,
        ),
        ToolSpec(
            "get_performance_analysis",
            "Measured dimensions (score 0..1, uncertainty) of a recording, or of a user's latest"
            " analysed recordings with each dimension's trend — for the recording's owner, their"
            " teachers and admins. Dimensions not measured are listed, never scored.",
            PerformanceArgs,
            PerformanceResult,
            timeout_s=15.0,
        ),
        ToolSpec(
            "ingest_document",
            "Add a text or a URL to the knowledge base (teachers and admins).",
            IngestDocumentArgs,
            IngestDocumentResult,
            roles=WRITERS,
            writes=True,
            rate="ingest",
            timeout_s=30.0,
        ),
    )
}


class ToolCallReply(BaseModel):
    """`POST /v1/tools/{name}` → the tool's result, with the audit row's id."""

    tool: str
    result: dict[str, Any]
    audit_id: str
    latency_ms: float


class AuditRow(BaseModel):
    id: str
    at: str
    user_id: str
    role: str
    tool: str
    args_sha256: str
    outcome: Literal["ok", "error"]
    error_code: str | None = None
    latency_ms: float
    request_id: str
    model_requested: bool
    session_id: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditRow]
    next_cursor: str | None = None
