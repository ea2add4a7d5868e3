"""Public v1 request/response models. `schema/` is generated from these (see `make schema`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUERY_CHARS = 2000
MAX_TITLE_CHARS = 512


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


class CreateTextDocument(Strict):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    text: str = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty after removing whitespace")
        return value


class DocumentAccepted(BaseModel):
    document_id: str
    version: int
    status: str
    chunks: int


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=10, ge=1, le=50)

    @field_validator("query")
    @classmethod
    def has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty after removing whitespace")
        return value


class SearchHit(BaseModel):
    document_id: str
    chunk_id: str
    text: str
    score: float
    page: int | None = None
    char_start: int
    char_end: int
    dense_rank: int | None = None
    keyword_rank: int | None = None


class SearchResponse(BaseModel):
    results: list[SearchHit]
    timings_ms: dict[str, float]
