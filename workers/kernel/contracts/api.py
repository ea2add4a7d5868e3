"""Public v1 request/response models. `schema/` is generated from these (see `make schema`)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from kernel.contracts.analyzer import MAX_DIMENSIONS, Dimension

MAX_QUERY_CHARS = 2000
MAX_TITLE_CHARS = 512


def _has_words(value: str) -> str:
    if not value.strip():
        raise ValueError("empty after removing whitespace")
    return value


# User text that must say something: length-bounded and not just whitespace.
QueryText = Annotated[
    str, Field(min_length=1, max_length=MAX_QUERY_CHARS), AfterValidator(_has_words)
]


# Characters no label may hold: C0/C1 controls (NUL, CR/LF, tab, ESC of ANSI sequences, DEL),
# line/paragraph separators, bidi overrides and isolates (spoofed file names), lone surrogates
# (not storable as UTF-8). Joiners (ZWJ/ZWNJ) stay: emoji and several scripts need them.
_FORMAT = "\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_NOT_IN_LABEL = re.compile(f"[\x00-\x1f{_FORMAT}]")
_NOT_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f{_FORMAT}]")  # tab and LF are text
_NEWLINES = re.compile("\r\n?")


def _refuse_char(found: re.Match[str], where: str) -> ValueError:
    return ValueError(
        f"control or format character U+{ord(found.group()):04X} is not allowed {where}"
    )


def _printable(value: str) -> str:
    found = _NOT_IN_LABEL.search(value)
    if found:
        raise _refuse_char(found, "in a label")
    return value.strip()


def _label(value: str) -> str:
    value = _printable(value)
    if not value:
        raise ValueError("empty after removing whitespace")
    return value


def _text(value: str) -> str:
    value = _NEWLINES.sub("\n", value)  # CR alone would let a value rewrite a terminal line
    found = _NOT_IN_TEXT.search(value)
    if found:
        raise _refuse_char(found, "(only tab and newline may appear)")
    return value


def as_label(value: str | None, max_length: int) -> str | None:
    """A title the document itself supplied (HTML <title>, PDF/DOCX metadata, a URL): not the
    user's to fix, so its control characters become spaces instead of refusing the document."""
    if not value:
        return None
    cleaned = " ".join(_NOT_IN_LABEL.sub(" ", value).split())[:max_length].strip()
    return cleaned or None


# One line of user-chosen text that names something (title, tag, name): printable, trimmed,
# not blank. Length bounds go at each use: Annotated[Label, Field(max_length=...)].
Label = Annotated[str, AfterValidator(_label)]
# As Label, but may be empty ("" meaning "none", e.g. the whole document instead of a section).
OptionalLabel = Annotated[str, AfterValidator(_printable)]
# Short multi-line text (metadata values): as Label, but tab and newline are allowed and kept.
LabelText = Annotated[str, AfterValidator(_text)]


class Strict(BaseModel):
    # Unknown fields are errors, not silently ignored: a typo must not change behaviour.
    # Strict types: `true` or "5" is not an integer, "0.5" not a number, 1 not a boolean.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class CreateTenant(Strict):
    name: Annotated[Label, Field(min_length=1, max_length=200)]


class TenantCreated(BaseModel):
    tenant_id: str
    name: str
    api_key: str
    api_key_id: str


MAX_METADATA_BYTES = 8 * 1024

Visibility = Literal["tenant", "private", "students"]


MetadataKey = Annotated[Label, Field(min_length=1, max_length=64)]


class DocumentOptions(Strict):
    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)] | None = None
    visibility: Visibility = "tenant"
    # Blank tags are dropped (and duplicates merged) below; control characters are refused.
    tags: list[Annotated[str, AfterValidator(_printable)]] = Field(
        default_factory=list, max_length=32
    )
    metadata: dict[MetadataKey, LabelText | int | float | bool] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def clean_tags(cls, tags: list[str]) -> list[str]:
        return _clean_tags(tags)

    @field_validator("metadata")
    @classmethod
    def small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _small_metadata(metadata)


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({t.strip() for t in tags if t.strip()})
    if any(len(t) > 64 for t in cleaned):
        raise ValueError("each tag is at most 64 characters")
    return cleaned


def _small_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is at most {MAX_METADATA_BYTES} bytes of JSON")
    return metadata


class DocumentPatch(Strict):
    """`PATCH /v1/documents/{id}`: title, tags or metadata, without a new version (visibility
    changes need a new upload: vectors carry it). Omitted fields keep their value; `tags` and
    `metadata` replace the stored ones whole."""

    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)] | None = None
    tags: list[Annotated[str, AfterValidator(_printable)]] | None = Field(
        default=None, max_length=32
    )
    metadata: dict[MetadataKey, LabelText | int | float | bool] | None = None

    @field_validator("tags")
    @classmethod
    def clean_tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else _clean_tags(tags)

    @field_validator("metadata")
    @classmethod
    def small_metadata(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if metadata is None else _small_metadata(metadata)

    @model_validator(mode="after")
    def something(self) -> DocumentPatch:
        if self.title is None and self.tags is None and self.metadata is None:
            raise ValueError("send at least one of `title`, `tags` or `metadata`")
        return self


class FileName(Strict):
    """The name of an uploaded file part (multipart `filename`), checked like any label."""

    filename: Annotated[Label, Field(min_length=1, max_length=255)]


class JsonDocument(DocumentOptions):
    text: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    # A confirmed direct upload of the caller's (POST /v1/uploads): large files skip the Worker.
    upload_id: Annotated[str, Field(pattern=r"^up_[0-9a-f]{24}$")] | None = None

    @model_validator(mode="after")
    def one_source(self) -> JsonDocument:
        if sum(v is not None for v in (self.text, self.url, self.upload_id)) != 1:
            raise ValueError("send exactly one of `text`, `url` or `upload_id`")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty after removing whitespace")
        if self.text is not None and self.title is None:
            raise ValueError("title is required with `text`")
        return self


ProviderName = Literal["workers-ai", "anthropic", "dedalus", "openai"]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S+$")]


ToolName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]


class EntityType(Strict):
    """A tenant's own entity type for `extract_entities` (beside person, place, ...)."""

    name: ToolName
    description: Annotated[Label, Field(min_length=1, max_length=300)]


class IntentLabel(Strict):
    """One label of an intent set for `classify_intent`."""

    name: ToolName
    description: Annotated[Label, Field(min_length=1, max_length=300)]


class TenantSettings(Strict):
    """PATCH /v1/settings: omitted fields keep their value."""

    # ≤254: the chunk plus [CLS]/[SEP] must fit the local model's 256-token window.
    chunk_tokens: int | None = Field(default=None, ge=16, le=254)
    chunk_overlap: int | None = Field(default=None, ge=0, le=200)
    max_upload_bytes: int | None = Field(default=None, ge=1024)
    # What one document may become (issue 9): lower than the deployment's ceiling, never above.
    max_inflated_bytes: int | None = Field(default=None, ge=64 * 1024)
    max_text_chars: int | None = Field(default=None, ge=1000)
    max_chunks: int | None = Field(default=None, ge=1)
    # The model providers / models this tenant's answers may use, narrowing the deployment's
    # chain (EDGERAG_LLM_PROVIDERS) — never extending it. `null` sets it back to all of them.
    llm_providers: list[ProviderName] | None = Field(default=None, min_length=1, max_length=4)
    llm_models: list[ModelName] | None = Field(default=None, min_length=1, max_length=20)
    # The tenant's own entity types and intent labels (tools: extract_entities adds the types
    # to the built-in ones; classify_intent uses the labels instead of the default set).
    entity_types: list[EntityType] | None = Field(default=None, min_length=1, max_length=10)
    intent_labels: list[IntentLabel] | None = Field(default=None, min_length=2, max_length=30)
    # Who translates sections (POST /v1/translate): Workers AI's m2m100, or the model layer
    # (the tenant's providers). None: the deployment's EDGERAG_TRANSLATION_PROVIDER.
    translation_provider: Literal["workers-ai", "llm"] | None = None
    # Recordings (issue 14): the tenant's analyzer — an https URL serving the analyzer contract
    # (kernel.contracts.analyzer), `null` for the deployment's — and the dimensions recordings
    # are judged on (`null`: the signal analyzer's measurements).
    analyzer_url: Annotated[str, Field(min_length=9, max_length=2048)] | None = None
    recording_dimensions: list[Dimension] | None = Field(
        default=None, min_length=1, max_length=MAX_DIMENSIONS
    )

    @field_validator("recording_dimensions")
    @classmethod
    def distinct_names(cls, value: list[Dimension] | None) -> list[Dimension] | None:
        if value is not None and len({d.name for d in value}) != len(value):
            raise ValueError("dimension names must be distinct")
        return value

    @field_validator("llm_providers", "llm_models")
    @classmethod
    def distinct(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class DocumentAccepted(BaseModel):
    document_id: str
    version: int
    status: str  # queued (new work), or the current status when unchanged/replayed
    unchanged: bool = False
    replayed: bool = False


class SearchFilters(Strict):
    """All given filters must hold (AND). Unknown filter fields are a 422, never ignored."""

    document_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)
    tags: list[str] | None = Field(default=None, min_length=1, max_length=20)  # any of these
    visibility: list[Visibility] | None = Field(default=None, min_length=1)


class SearchRequest(Strict):
    query: QueryText
    top_k: int = Field(default=10, ge=1, le=100)
    filters: SearchFilters | None = None
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    fusion: Literal["rrf", "weighted"] = "rrf"
    dense_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # weighted fusion only
    rerank: bool = True


class SearchHit(BaseModel):
    document_id: str
    version: int
    title: str
    heading_path: list[str]
    chunk_id: str
    text: str
    score: float  # the fused score (RRF or weighted), higher is better
    rerank_score: float | None = None  # when reranked, results are ordered by this
    page: int | None = None  # the page the chunk starts on (= page_start); None: not paged
    page_start: int | None = None
    page_end: int | None = None  # the page of the chunk's last character
    char_start: int
    char_end: int
    dense_rank: int | None = None  # 1-based rank in each retriever, None if it missed
    keyword_rank: int | None = None


class SearchResponse(BaseModel):
    results: list[SearchHit]
    mode: str
    reranker: str | None = None  # the model that reranked, when it did
    cached: bool = False
    timings_ms: dict[str, float]


class AnswerRequest(Strict):
    query: QueryText
    filters: SearchFilters | None = None
    selected_text: str | None = Field(default=None, min_length=1, max_length=8000)
    max_sources: int = Field(default=6, ge=1, le=10)


class Citation(BaseModel):
    n: int
    document_id: str
    chunk_id: str
    title: str
    version: int
    page: int | None  # the page holding the quote's first character; None: not paged
    page_end: int | None = None  # the page of its last character (≠ page across a break)
    char_start: int  # into the document version's stored extracted text
    char_end: int
    quote: str  # == stored text[char_start:char_end], verified before returning


class ProviderAttempt(BaseModel):
    """One provider of the llm Worker's chain, as the router met it for this request."""

    provider: str
    model: str
    outcome: str  # ok | skipped | cooling_down | rate_limited | overloaded | server | timeout | …


class GeneratedBy(BaseModel):
    """Which provider and model wrote the answer, and every provider tried on the way."""

    provider: str
    model: str
    tried: list[ProviderAttempt]


class AnswerResponse(BaseModel):
    answer: str
    citations: list[Citation]
    confidence: float
    follow_ups: list[str]
    abstained: bool
    usage: dict[str, int]
    cached: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)
    generated_by: GeneratedBy | None = None  # None: abstained before asking a model
    # The model's citations the verifier refused (invented source, quote not in its source,
    # a quoted instruction, a claim breaking the schema); their sentences are not shown.
    dropped_sentences: int = 0
    # Query understanding (rag.understanding): factual | comparison | summary_request |
    # small_talk (answered without retrieval) | out_of_scope (abstains unless the documents
    # cover it after all); and the standalone query retrieval used.
    intent: str | None = None
    rewritten_query: str | None = None


class CreateSession(Strict):
    title: Annotated[Label, Field(min_length=1, max_length=200)] | None = None
    # Agentic chat: the model may call the caller's read tools (GET /v1/tools) on providers
    # with function calling; `write_tools` also lets it call tools that write (for roles that
    # may). Only the session's creator sets these, here, once: no message or document can.
    tools: bool = False
    write_tools: bool = False


class ChatMessageRequest(Strict):
    content: QueryText
    stream: bool = False
    filters: SearchFilters | None = None
    selected_text: str | None = Field(default=None, min_length=1, max_length=8000)


# --- direct uploads (presigned R2 URLs) --------------------------------------------------------
# Recordings: each container ingest.audio reads, with the content types that name it.
AUDIO_FORMATS: dict[str, tuple[str, ...]] = {
    "wav": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "flac": ("audio/flac", "audio/x-flac"),
    "mp3": ("audio/mpeg", "audio/mp3"),
    "ogg": ("audio/ogg", "audio/opus", "application/ogg"),
    "m4a": ("audio/mp4", "audio/x-m4a", "audio/m4a"),
}
AUDIO_TYPES = tuple(t for types in AUDIO_FORMATS.values() for t in types)
# What a direct upload may be: a document's types and the audio ones (tests/unit check it).
UploadType = Literal[
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "text/html",
    "text/markdown",
    "text/plain",
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/mpeg",
    "audio/mp3",
    "audio/ogg",
    "audio/opus",
    "application/ogg",
    "audio/mp4",
    "audio/x-m4a",
    "audio/m4a",
]


class CreateUpload(Strict):
    """`POST /v1/uploads`: what will be PUT — its exact size, type and SHA-256 are signed into
    the URL, so nothing else can be uploaded with it."""

    filename: Annotated[Label, Field(min_length=1, max_length=255)]
    content_type: UploadType
    size_bytes: int = Field(ge=1, le=1024 * 1024 * 1024)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    purpose: Literal["document", "project", "recording"] = "document"


class UploadTicket(BaseModel):
    upload_id: str
    method: Literal["PUT"]
    url: str
    headers: dict[str, str]  # send exactly these with the PUT (they are signed)
    expires_at: str


class UploadStatus(BaseModel):
    upload_id: str
    status: Literal["pending", "confirmed"]
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    purpose: str
    confirmed_at: str | None = None


class DownloadTicket(BaseModel):
    upload_id: str
    url: str
    expires_at: str


# --- projects ----------------------------------------------------------------------------------
class CreateProject(Strict):
    """`POST /v1/projects`: the project and the PDF that will be uploaded for it."""

    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)]
    description: Annotated[LabelText, Field(max_length=4000)] = ""
    filename: Annotated[Label, Field(min_length=1, max_length=255)]
    size_bytes: int = Field(ge=1, le=1024 * 1024 * 1024)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ProjectChange(Strict):
    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)] | None = None
    description: Annotated[LabelText, Field(max_length=4000)] | None = None


class Project(BaseModel):
    id: str
    owner_id: str
    title: str
    description: str
    status: Literal["pending", "ready"]
    page_count: int | None = None
    pdf_title: str | None = None
    created_at: str
    updated_at: str
    access: Literal["owner", "admin", "edit", "view", "teacher"] | None = None
    document_id: str | None = None  # the knowledge-base document it was indexed as


class ConfirmProject(Strict):
    """`POST /v1/projects/{id}/confirm`: `index` also adds the PDF to the knowledge base (a
    teacher's or an admin's), as a document of this visibility."""

    index: bool = False
    visibility: Visibility = "private"


class ProjectCreated(BaseModel):
    project: Project
    upload: UploadTicket


class ProjectList(BaseModel):
    projects: list[Project]
    next_cursor: str | None = None


class Grant(Strict):
    user_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    permission: Literal["view", "edit"]


class GrantRow(BaseModel):
    user_id: str
    permission: str
    granted_by: str
    created_at: str


class GrantList(BaseModel):
    grants: list[GrantRow]
