"""The ingest Worker's internal contract: what the gateway (and the Worker itself, over SELF)
sends to each route and what comes back.

The ingest Worker answers through these models (`model_dump()`), so a renamed or dropped field
breaks its contract test (tests/contract/test_ingest_routes.py), not a client. Bodies the
gateway forwards unchanged are the public models (kernel.contracts.api); uploads may also be
multipart/form-data (ingest/uploads.py). Replies ignore fields they do not know, so a newer
Worker can add one without breaking an older caller mid-deploy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kernel.contracts.api import (
    CreateProject,
    CreateUpload,
    DocumentAccepted,
    DocumentPatch,
    DownloadTicket,
    Grant,
    GrantList,
    JsonDocument,
    Project,
    ProjectChange,
    ProjectCreated,
    ProjectList,
    TenantSettings,
    UploadStatus,
    UploadTicket,
)

__all__ = [
    "CreateProject",
    "CreateUpload",
    "DocumentAccepted",
    "DocumentDeleted",
    "DocumentDetail",
    "DocumentList",
    "DocumentPatch",
    "DocumentRestored",
    "DocumentSections",
    "DocumentStatus",
    "DocumentSummary",
    "DownloadTicket",
    "EffectiveSettings",
    "Grant",
    "GrantList",
    "JobRef",
    "JobScheduled",
    "JsonDocument",
    "Progress",
    "Project",
    "ProjectChange",
    "ProjectCreated",
    "ProjectList",
    "SweepResult",
    "TenantSettings",
    "UploadStatus",
    "UploadTicket",
    "VersionInfo",
]


class _Document(BaseModel):
    id: str
    title: str
    visibility: str
    owner_id: str | None
    tags: list[str]
    metadata: dict[str, Any]
    live_version: int | None
    latest_version: int
    created_at: str
    updated_at: str


class DocumentSummary(_Document):
    """A row of `GET /documents`: the document with its latest version's state."""

    status: str
    kind: str
    size_bytes: int
    page_count: int | None
    chunk_count: int
    content_hash: str


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    next_cursor: str | None


class VersionInfo(BaseModel):
    version: int
    status: str
    kind: str
    content_type: str | None
    filename: str | None
    source_url: str | None
    content_hash: str
    size_bytes: int
    text_length: int
    page_count: int | None
    chunk_count: int
    error: str | None
    created_at: str
    updated_at: str


class DocumentDetail(_Document):
    """`GET /documents/{id}`: the document, its current version's figures, every version."""

    deleted_at: str | None
    status: str | None
    content_hash: str | None
    size_bytes: int | None
    page_count: int | None
    chunk_count: int | None
    versions: list[VersionInfo]


class Progress(BaseModel):
    done: int
    total: int


class DocumentStatus(BaseModel):
    document_id: str
    version: int
    live_version: int | None
    status: str  # queued | processing | ready | failed | superseded
    progress: Progress
    error: str | None


class DocumentDeleted(BaseModel):
    """`DELETE /documents/{id}`: `deleted` (soft, restorable) or, with ?purge=true, `purged`."""

    document_id: str
    deleted: bool | None = None
    purged: bool | None = None


class DocumentRestored(BaseModel):
    document_id: str
    deleted: bool


class EffectiveSettings(BaseModel):
    """`GET`/`PATCH /settings` reply: every setting as it applies now (the tenant's value, or
    the deployment's default); PATCH takes `TenantSettings`."""

    chunk_tokens: int
    chunk_overlap: int
    max_upload_bytes: int
    max_inflated_bytes: int
    max_text_chars: int
    max_chunks: int
    llm_providers: list[str] | None = None  # None: the deployment's whole chain
    llm_models: list[str] | None = None
    entity_types: list[dict[str, str]] | None = None  # None: the built-in types only
    intent_labels: list[dict[str, str]] | None = None  # None: the default intent set
    translation_provider: str | None = None  # None: EDGERAG_TRANSLATION_PROVIDER
    analyzer_url: str | None = None  # None: the deployment's analyzer (EDGERAG_ANALYZER_URL)
    recording_dimensions: list[dict[str, str]] | None = None  # None: the signal measurements


class JobRef(BaseModel):
    """`POST /internal/ingest/continue`: run this version's job in a fresh invocation."""

    document_id: str
    version: int


class JobScheduled(BaseModel):
    scheduled: bool


class SweepResult(BaseModel):
    """`POST /internal/ingest/sweep`: how many unheld jobs were resumed."""

    resumed: int


class SectionSpan(BaseModel):
    path: list[str]  # heading titles, outermost first; [] before the first heading / a page
    level: int
    char_start: int
    char_end: int
    page_start: int | None = None
    page_end: int | None = None


class SectionWithText(SectionSpan):
    text: str
    truncated: bool


class DocumentSections(BaseModel):
    """`GET /documents/{id}/sections`: the live version's outline, and one section's text."""

    document_id: str
    version: int
    text_length: int
    sections: list[SectionSpan]
    section: SectionWithText | None = None
