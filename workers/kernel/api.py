"""Public v1 request/response models. `schema/` is generated from these (see `make schema`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Strict(BaseModel):
    # Unknown fields are errors, not silently ignored: a typo must not change behaviour.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateTenant(Strict):
    name: str = Field(min_length=1, max_length=200)


class TenantCreated(BaseModel):
    tenant_id: str
    name: str
    api_key: str
    api_key_id: str


MAX_METADATA_BYTES = 8 * 1024

Visibility = Literal["tenant", "private", "students"]


class DocumentOptions(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_CHARS)
    visibility: Visibility = "tenant"
    tags: list[str] = Field(default_factory=list, max_length=32)
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def clean_tags(cls, tags: list[str]) -> list[str]:
        cleaned = sorted({t.strip() for t in tags if t.strip()})
        if any(len(t) > 64 for t in cleaned):
            raise ValueError("each tag is at most 64 characters")
        return cleaned

    @field_validator("metadata")
    @classmethod
    def small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is at most {MAX_METADATA_BYTES} bytes of JSON")
        return metadata


class JsonDocument(DocumentOptions):
    text: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def one_source(self) -> JsonDocument:
        if (self.text is None) == (self.url is None):
            raise ValueError("send exactly one of `text` or `url`")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty after removing whitespace")
        if self.text is not None and self.title is None:
            raise ValueError("title is required with `text`")
        return self


class TenantSettings(Strict):
    """PATCH /v1/settings: omitted fields keep their value."""

    # ≤254: the chunk plus [CLS]/[SEP] must fit the local model's 256-token window.
    chunk_tokens: int | None = Field(default=None, ge=16, le=254)
    chunk_overlap: int | None = Field(default=None, ge=0, le=200)
    max_upload_bytes: int | None = Field(default=None, ge=1024)


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
    page: int | None = None
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
    page: int | None
    char_start: int  # into the document version's stored extracted text
    char_end: int
    quote: str  # == stored text[char_start:char_end], verified before returning


class AnswerResponse(BaseModel):
    answer: str
    citations: list[Citation]
    confidence: float
    follow_ups: list[str]
    abstained: bool
    usage: dict[str, int]
    cached: bool = False
    timings_ms: dict[str, float] = Field(default_factory=dict)


class CreateSession(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200)


class ChatMessageRequest(Strict):
    content: QueryText
    stream: bool = False
    filters: SearchFilters | None = None
    selected_text: str | None = Field(default=None, min_length=1, max_length=8000)
