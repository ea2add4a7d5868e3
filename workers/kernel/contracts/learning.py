"""Learning features' public models: reading progress (issue 13)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from kernel.contracts.api import OptionalLabel, Strict

SectionPath = Annotated[str, Field(max_length=1024)]


class ProgressUpdate(Strict):
    """`POST /v1/me/progress`: a section read (and perhaps completed). `section` is a heading
    path as `GET /v1/documents/{id}/sections` lists it ("A > B"), or "" for the whole document."""

    document_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    section: Annotated[OptionalLabel, Field(max_length=1024)] = ""
    completed: bool = False


class SectionProgress(BaseModel):
    section: str
    completed: bool
    first_read_at: str
    last_read_at: str


class DocumentProgress(BaseModel):
    document_id: str
    sections: list[SectionProgress]
    sections_read: int
    sections_completed: int
    last_read_at: str


class Progress(BaseModel):
    user_id: str
    documents: list[DocumentProgress]
    questions_asked: int
    last_question_at: str | None = None


class DocumentReaders(BaseModel):
    document_id: str
    readers: int
    sections_completed: int
    last_read_at: str


class ProgressSummary(BaseModel):
    documents: list[DocumentReaders]
    learners_asking: int
    questions_asked: int
