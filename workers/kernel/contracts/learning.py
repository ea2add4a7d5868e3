"""Learning features' public models: progress, personalized and translated sections (issue 13)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from kernel.contracts.api import Citation, GeneratedBy, Label, LabelText, OptionalLabel, Strict

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


# --- personalize and translate --------------------------------------------------------------
DocumentId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Level = Literal["beginner", "intermediate", "advanced"]
# The languages a translation may target (BCP-47 primary tags); right-to-left ones below.
LANGUAGES = frozenset(
    [
        "ar",
        "bn",
        "de",
        "en",
        "es",
        "fa",
        "fr",
        "he",
        "hi",
        "id",
        "it",
        "ja",
        "ko",
        "nl",
        "pl",
        "ps",
        "pt",
        "ru",
        "sw",
        "tr",
        "ur",
        "vi",
        "zh",
    ]
)
RTL = frozenset({"ar", "fa", "he", "ps", "ur"})


class PersonalizeRequest(Strict):
    document_id: DocumentId
    # A heading or heading path; None: the whole document (within the token limit).
    section: Annotated[Label, Field(max_length=1024)] | None = None
    level: Level | None = None  # None: the reader's context, else intermediate


class Block(BaseModel):
    kind: Literal["heading", "paragraph", "list_item", "code", "note"]
    text: str
    citations: list[int] = Field(default_factory=list)  # numbers into `citations`
    grounded: bool = True  # False: a note the document does not state (a definition, a pointer)


class SectionRef(BaseModel):
    path: list[str]
    char_start: int
    char_end: int


class PersonalizeResponse(BaseModel):
    document_id: str
    version: int
    section: SectionRef
    level: str
    content: str  # Markdown: the blocks rendered, paragraphs with [n] markers, notes as quotes
    blocks: list[Block]
    citations: list[Citation]
    dropped_blocks: int = 0  # blocks the verifier refused (not shown)
    cached: bool = False
    generated_by: GeneratedBy | None = None
    usage: dict[str, int]


class TranslateRequest(Strict):
    document_id: DocumentId | None = None
    section: Annotated[Label, Field(max_length=1024)] | None = None
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    target_language: Annotated[str, Field(min_length=2, max_length=35)]

    @model_validator(mode="after")
    def one_source(self) -> TranslateRequest:
        if (self.document_id is None) == (self.text is None):
            raise ValueError("send exactly one of `document_id` (and `section`) or `text`")
        if self.section is not None and self.document_id is None:
            raise ValueError("`section` needs `document_id`")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty after removing whitespace")
        primary = self.target_language.split("-")[0].lower()
        if primary not in LANGUAGES:
            raise ValueError(
                f"target_language: {self.target_language!r} is not supported; one of"
                f" {', '.join(sorted(LANGUAGES))} (BCP-47, e.g. ur or ur-PK)"
            )
        return self


class TranslateResponse(BaseModel):
    target_language: str
    direction: Literal["ltr", "rtl"]
    content: str
    blocks: list[Block]
    source: SectionRef | None = None
    document_id: str | None = None
    version: int | None = None
    cached: bool = False
    generated_by: GeneratedBy | None = None
    usage: dict[str, int]


# --- text to speech -----------------------------------------------------------------------------
MAX_TTS_CHARS = 1000
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&[A-Za-z]+;|&#\d+;")


def _speakable(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("empty after removing whitespace")
    if _MARKUP.search(value):
        raise ValueError("markup (SSML, HTML tags or entities) is not accepted: send plain text")
    return value


class TtsRequest(Strict):
    """`POST /v1/tts`: plain text, or one of the caller's chat messages ("<session_id>:<seq>",
    as `GET /v1/chat/sessions/{id}` numbers them)."""

    text: (
        Annotated[LabelText, AfterValidator(_speakable), Field(max_length=MAX_TTS_CHARS)] | None
    ) = None
    message_id: Annotated[str, Field(pattern=r"^s_[0-9a-f]{24}:[1-9][0-9]{0,6}$")] | None = None
    voice: (
        Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")] | None
    ) = None
    format: Literal["wav", "mp3", "ogg"] = "wav"
    stream: bool = False

    @model_validator(mode="after")
    def one_source(self) -> TtsRequest:
        if (self.text is None) == (self.message_id is None):
            raise ValueError("send exactly one of `text` or `message_id`")
        return self


class SpeakRequest(Strict):
    """The llm Worker's `POST /tts` (internal): the text to speak, already resolved."""

    text: Annotated[LabelText, AfterValidator(_speakable), Field(max_length=8 * MAX_TTS_CHARS)]
    voice: str | None = None
    format: Literal["wav", "mp3", "ogg"] = "wav"
