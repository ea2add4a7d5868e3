"""The analyzer contract: how edgerag asks an analysis service about a recording (issue 14).

An analyzer is an HTTP service. edgerag POSTs an `AnalyzerRequest` (JSON) to it — the
recording's presigned GET URL (valid 10 minutes), what confirm read from its headers, and the
tenant's dimension set — and expects an `AnalyzerResponse` back within the timeout. A tenant can
plug in its own model service by serving this contract (docs/recordings.md); locally the dev
server serves a signal analyzer (emulator/analyzer.py) that measures what a signal can tell.

Rules the response must keep, else the analysis fails as malformed and nothing is saved:
scores and uncertainties are finite numbers in [0, 1]; segments lie within the recording and
start before they end; at most MAX_SEGMENTS segments and MAX_DIMENSIONS dimensions, each name
once per list; at most 8 MB of JSON. An analyzer that cannot analyse this recording (its codec,
its length) answers 422 `{"error": {"code", "message"}}`: edgerag passes that on to the user
as `recording_refused` with the analyzer's code and message; any other non-200 is the
analyzer's failure. The deployment's analyzer receives `authorization: Bearer
<EDGERAG_ANALYZER_TOKEN>` when that secret is set. A dimension
the analyzer cannot measure is left out — never sent with a made-up score. Names the tenant did
not ask for are dropped by edgerag (and listed as `ignored`).
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

CONTRACT: Final = "edgerag.analyzer/v1"
MAX_DIMENSIONS = 64
MAX_SEGMENTS = 500
DimensionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Unit = Annotated[float, AfterValidator(_finite), Field(ge=0.0, le=1.0)]
Finite = Annotated[float, AfterValidator(_finite)]


class Dimension(BaseModel):
    """One dimension a tenant wants recordings judged on (its dimension set, in settings)."""

    model_config = ConfigDict(extra="forbid")
    name: DimensionName
    label: Annotated[str, Field(min_length=1, max_length=120)]
    group: Annotated[str, Field(min_length=1, max_length=40)] = "technical"
    description: Annotated[str, Field(max_length=500)] = ""


class RecordingRef(BaseModel):
    id: str
    url: str  # a presigned GET, valid 10 minutes
    content_type: str
    size_bytes: Annotated[int, Field(ge=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # hex, of the whole file
    format: Literal["wav", "flac", "mp3", "ogg", "m4a"]
    # From the container's headers: exact for WAV and FLAC, an estimate for some MP3 and OGG.
    duration_s: Annotated[float, Field(gt=0)]
    sample_rate: Annotated[int, Field(ge=1)]
    channels: Annotated[int, Field(ge=1)]


class AnalyzerRequest(BaseModel):
    contract: Literal["edgerag.analyzer/v1"] = CONTRACT
    request_id: str = ""
    recording: RecordingRef
    dimensions: list[Dimension]


class Score(BaseModel):
    """A dimension's result: `score` in [0, 1] (higher = more of the quality named),
    `uncertainty` in [0, 1]; `value` and `unit` carry the raw measurement when there is one.
    `graded: false` marks a descriptive measurement (how loud, how many notes a second): its
    score places the value on a scale and says nothing of better or worse, so feedback does not
    call it a strength or a weakness."""

    model_config = ConfigDict(extra="ignore")
    name: DimensionName
    score: Unit
    uncertainty: Unit
    graded: bool = True
    value: Finite | None = None
    unit: Annotated[str, Field(max_length=32)] | None = None
    explanation: Annotated[str, Field(max_length=500)] = ""


class Segment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start_s: Annotated[Finite, Field(ge=0.0)]
    end_s: Finite
    dimensions: Annotated[list[Score], Field(max_length=MAX_DIMENSIONS)] = []
    note: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if self.end_s <= self.start_s:
            raise ValueError("a segment ends after it starts")
        return self


class AnalyzerInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, Field(min_length=1, max_length=80)]
    version: Annotated[str, Field(max_length=40)] = ""
    # signal: measurements of the waveform; model: a learned judgement
    kind: Literal["signal", "model"] = "model"


class AnalyzerResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    analyzer: AnalyzerInfo
    dimensions: Annotated[list[Score], Field(max_length=MAX_DIMENSIONS)]
    segments: Annotated[list[Segment], Field(max_length=MAX_SEGMENTS)] = []

    @model_validator(mode="after")
    def _distinct(self) -> AnalyzerResponse:
        for scores in [self.dimensions, *(s.dimensions for s in self.segments)]:
            names = [s.name for s in scores]
            if len(set(names)) != len(names):
                raise ValueError("a dimension is named twice in one list")
        return self

    def check_within(self, duration_s: float) -> None:
        """Segments must lie within the recording. Header durations of MP3 and OGG can be
        estimates, so up to 2 % (at least 0.5 s) past them is accepted and clamped."""
        slack = max(0.5, 0.02 * duration_s)
        for segment in self.segments:
            if segment.end_s > duration_s + slack or segment.start_s >= duration_s:
                raise ValueError(
                    f"a segment ends at {segment.end_s:g} s, after the recording's {duration_s:g} s"
                )
            segment.end_s = min(segment.end_s, duration_s)
