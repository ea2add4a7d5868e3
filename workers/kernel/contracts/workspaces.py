"""Workspaces' public models: page annotations, recordings, analyses and feedback (issue 14).

Annotation geometry is normalized to the page — (0, 0) its top-left corner, (1, 1) its
bottom-right — so it holds at any zoom; every coordinate is a finite number in [0, 1] and every
count and size is bounded, so a client cannot store a megabyte of points or a NaN.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from kernel.contracts.analyzer import AnalyzerInfo, Dimension, Segment
from kernel.contracts.api import (
    MAX_TITLE_CHARS,
    Citation,
    GeneratedBy,
    Label,
    LabelText,
    Strict,
)

MAX_PATHS = 100
MAX_POINTS_PER_PATH = 2000
MAX_POINTS = 10_000
MAX_NOTE_CHARS = 5000
MAX_HIGHLIGHT_CHARS = 2000


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Coord = Annotated[float, AfterValidator(_finite), Field(ge=0.0, le=1.0)]
Extent = Annotated[float, AfterValidator(_finite), Field(gt=0.0, le=1.0)]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
Page = Annotated[int, Field(ge=1, le=100_000)]
ProjectId = Annotated[str, Field(pattern=r"^prj_[0-9a-f]{24}$")]


class Highlight(Strict):
    kind: Literal["highlight"]
    x: Coord
    y: Coord
    width: Extent
    height: Extent
    color: Color = "#ffeb3b"
    text: Annotated[LabelText, Field(max_length=MAX_HIGHLIGHT_CHARS)] = ""

    @model_validator(mode="after")
    def _on_page(self) -> Highlight:
        if self.x + self.width > 1.000001 or self.y + self.height > 1.000001:
            raise ValueError("the highlight must lie within the page (x + width, y + height ≤ 1)")
        return self


class Note(Strict):
    kind: Literal["note"]
    x: Coord
    y: Coord
    text: Annotated[LabelText, Field(min_length=1, max_length=MAX_NOTE_CHARS)]
    color: Color = "#ffd54f"


Point = Annotated[list[Coord], Field(min_length=2, max_length=2)]


class Stroke(Strict):
    points: Annotated[list[Point], Field(min_length=2, max_length=MAX_POINTS_PER_PATH)]


class Drawing(Strict):
    kind: Literal["drawing"]
    paths: Annotated[list[Stroke], Field(min_length=1, max_length=MAX_PATHS)]
    color: Color = "#e53935"
    # A fraction of the page's width: 0.002 is a fine pen, 0.05 a wide marker.
    stroke_width: Annotated[float, AfterValidator(_finite), Field(gt=0.0, le=0.05)] = 0.004

    @model_validator(mode="after")
    def _bounded(self) -> Drawing:
        total = sum(len(p.points) for p in self.paths)
        if total > MAX_POINTS:
            raise ValueError(f"a drawing holds at most {MAX_POINTS} points, this one {total}")
        return self


Shape = Annotated[Highlight | Note | Drawing, Field(discriminator="kind")]
SHAPES: dict[str, type[Highlight] | type[Note] | type[Drawing]] = {
    "highlight": Highlight,
    "note": Note,
    "drawing": Drawing,
}


class CreateAnnotation(Strict):
    """`POST /v1/annotations`: `{project_id, page, kind, …the kind's fields}`."""

    project_id: ProjectId
    page: Page
    shape: Shape

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        # The wire form is flat ({project_id, page, kind, x, …}); the shape is its own model.
        if isinstance(data, dict) and "shape" not in data:
            rest = {k: v for k, v in data.items() if k not in ("project_id", "page")}
            return {"project_id": data.get("project_id"), "page": data.get("page"), "shape": rest}
        return data


class Annotation(BaseModel):
    id: str
    project_id: str
    page: int
    author_id: str
    kind: str
    created_at: str
    updated_at: str
    mine: bool
    shape: dict[str, Any]  # the kind's fields, as created or last changed


class AnnotationList(BaseModel):
    annotations: list[Annotation]
    next_cursor: str | None


# --- recordings --------------------------------------------------------------------------------
class CreateRecording(Strict):
    """`POST /v1/recordings`: the audio file that will be PUT straight to R2."""

    title: Annotated[Label, Field(min_length=1, max_length=MAX_TITLE_CHARS)] | None = None
    filename: Annotated[Label, Field(min_length=1, max_length=255)]
    content_type: Annotated[str, Field(max_length=100)]
    size_bytes: int = Field(ge=0, le=1024 * 1024 * 1024)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class AnalysisSummary(BaseModel):
    id: str
    status: Literal["running", "done", "failed"]
    created_at: str


class Recording(BaseModel):
    id: str
    owner_id: str
    title: str
    status: Literal["pending", "ready", "rejected"]
    error: str | None = None
    content_type: str
    size_bytes: int
    format: str | None = None
    codec: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bitrate: int | None = None
    created_at: str
    updated_at: str
    latest_analysis: AnalysisSummary | None = None


class RecordingCreated(BaseModel):
    recording: Recording
    upload: Any  # api.UploadTicket


class RecordingList(BaseModel):
    recordings: list[Recording]
    next_cursor: str | None


class MeasuredDimension(BaseModel):
    """A tenant dimension the analyzer measured (Score + the tenant's label and group)."""

    name: str
    label: str
    group: str
    score: float
    uncertainty: float
    graded: bool = True  # False: descriptive (loudness, note density), neither good nor bad
    value: float | None = None
    unit: str | None = None
    explanation: str = ""


class Analysis(BaseModel):
    id: str
    recording_id: str
    status: Literal["running", "done", "failed"]
    requested_by: str
    analyzer: AnalyzerInfo | None = None
    dimensions: list[MeasuredDimension] = []
    segments: list[Segment] = []
    unmeasured: list[str] = []  # in the tenant's set, not measured: absent, never invented
    ignored: list[str] = []  # sent by the analyzer, not in the tenant's set
    error: dict[str, str] | None = None  # {code, message} when failed
    created_at: str
    finished_at: str | None = None


class AnalysisList(BaseModel):
    analyses: list[Analysis]


class AnalyzerSettings(BaseModel):
    """What the settings say about analysis (GET /v1/settings shows it too)."""

    analyzer_url: str | None
    recording_dimensions: list[Dimension]


# --- feedback ----------------------------------------------------------------------------------
class FeedbackRequest(Strict):
    """`POST /v1/recordings/{id}/feedback`: from the latest finished analysis (or `analysis_id`);
    `focus` narrows what the knowledge base is searched for (e.g. "bow control")."""

    analysis_id: Annotated[str, Field(pattern=r"^ana_[0-9a-f]{24}$")] | None = None
    focus: Annotated[Label, Field(max_length=200)] | None = None


class Statement(BaseModel):
    """One statement of feedback. `basis` says where it comes from: `analysis` (a measured
    dimension, named in `dimension`) or `knowledge` (the knowledge base: `citations` holds the
    verified citation numbers, never empty)."""

    text: str
    basis: Literal["analysis", "knowledge"]
    dimension: str | None = None
    citations: list[int] = []


class SegmentFeedback(BaseModel):
    start_s: float
    end_s: float
    observation: Statement
    suggestion: Statement | None = None


class Feedback(BaseModel):
    id: str
    recording_id: str
    analysis_id: str
    overall: Statement
    strengths: list[Statement]
    improvements: list[Statement]
    segments: list[SegmentFeedback]
    practice: list[Statement]
    citations: list[Citation]
    dropped_statements: int  # the model's statements that did not hold (unverified, unmeasured)
    generated_by: GeneratedBy
    prompt_version: str
    created_at: str
    cached: bool = False
    usage: dict[str, int] = {}


class FeedbackList(BaseModel):
    feedback: list[Feedback]
