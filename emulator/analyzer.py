"""The local analyzer the dev server serves at `/analyzer/`: the analyzer contract
(kernel.contracts.analyzer) answered with signal measurements (emulator/signal.py).

`POST /analyzer/v1/analyze` with an `AnalyzerRequest` fetches the recording from its presigned
URL, checks its SHA-256, decodes it and measures the dimensions it knows (loudness,
dynamic_range, onset_density, tempo_stability, pitch_stability) over the whole recording and
in 5 s segments. It reports itself as `kind="signal"`: measurements of the waveform, not a
learned judgement of the playing. Dimensions it does not know, or that the signal cannot
support (no pitch in a drum loop, no tempo with fewer than 8 onsets), are left out.

Errors answer `{"error": {"code", "message"}}`: 422 invalid_request, checksum_mismatch,
undecodable, unsupported, too_long; 502 fetch_failed; 404/405 for other paths and methods;
500 internal for a bug. The request's headers (edgerag's bearer token) are not checked: it is
a local development service.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import traceback
from collections.abc import Awaitable, Callable

import httpx
from pydantic import ValidationError

from emulator.signal import (
    DIMENSIONS,
    SILENCE_DBFS,
    UNSUPPORTED,
    AnalyzerError,
    Measurement,
    decode,
    extract,
    summarise,
)
from kernel.contracts.analyzer import (
    MAX_SEGMENTS,
    AnalyzerInfo,
    AnalyzerRequest,
    AnalyzerResponse,
    Score,
    Segment,
)

__all__ = [
    "INFO",
    "ROUTE",
    "AnalyzerError",
    "FetchFailed",
    "analyze",
    "fetch_recording",
    "handle",
    "segment_spans",
]

INFO = AnalyzerInfo(name="edgerag-signal", version="1", kind="signal")
ROUTE = "/analyzer/v1/analyze"
# Steadier and wider is better practice; how loud and how many notes a second only describe.
GRADED = frozenset({"dynamic_range", "tempo_stability", "pitch_stability"})
SEGMENT_S = 5.0
MIN_SEGMENT_S = 1.0
MAX_FETCH_BYTES = 250 * 1024 * 1024
FETCH_TIMEOUT_S = 60.0
UNDECODABLE_FORMATS = {"m4a": "M4A", "mp4": "M4A", "aac": "AAC", "webm": "WebM"}
# at most two analyses at once: a 30-minute 48 kHz recording takes ~0.4 GB beyond its bytes
_analyses = threading.BoundedSemaphore(2)

Reply = tuple[int, dict[str, str], bytes]
Fetch = Callable[[str], Awaitable[bytes]]


class FetchFailed(Exception):
    """The recording could not be fetched from its URL."""


def segment_spans(duration: float) -> list[tuple[float, float]]:
    """5 s windows (longer for recordings past MAX_SEGMENTS × 5 s), the last one shorter and
    dropped when under a second."""
    step = max(SEGMENT_S, float(math.ceil(duration / MAX_SEGMENTS)))
    spans: list[tuple[float, float]] = []
    start = 0.0
    while start < duration and len(spans) < MAX_SEGMENTS:
        end = min(start + step, duration)
        if end - start >= MIN_SEGMENT_S:
            spans.append((start, end))
        start += step
    return spans


def _score(m: Measurement) -> Score:
    return Score(
        name=m.name,
        score=round(m.score, 4),
        uncertainty=round(m.uncertainty, 4),
        value=round(m.value, 3),
        unit=m.unit,
        explanation=m.explanation,
        graded=m.name in GRADED,
    )


def analyze(request: AnalyzerRequest, audio: bytes) -> AnalyzerResponse:
    """Measure the requested dimensions this analyzer knows; AnalyzerError when the audio
    cannot be read. Nothing requested that it knows: nothing measured (and nothing decoded)."""
    wanted = [n for n in dict.fromkeys(d.name for d in request.dimensions) if n in DIMENSIONS]
    if not wanted:
        return AnalyzerResponse(analyzer=INFO, dimensions=[])
    samples, rate = decode(audio)
    features = extract(samples, rate)
    del samples
    whole = summarise(features, 0.0, features.duration)
    # segments stay within the duration confirm read from the headers, which edgerag checks
    declared = request.recording.duration_s
    limit = min(features.duration, declared) if declared > 0 else features.duration
    segments: list[Segment] = []
    for start, end in segment_spans(limit):
        found = summarise(features, start, end)
        segments.append(
            Segment(
                start_s=round(start, 3),
                end_s=round(end, 3),
                dimensions=[_score(found[n]) for n in wanted if n in found],
                note="" if found else f"silent: no 400 ms window above {SILENCE_DBFS:g} dBFS",
            )
        )
    return AnalyzerResponse(
        analyzer=INFO,
        dimensions=[_score(whole[n]) for n in wanted if n in whole],
        segments=segments,
    )


def _analyze_bounded(request: AnalyzerRequest, audio: bytes) -> AnalyzerResponse:
    with _analyses:
        return analyze(request, audio)


async def fetch_recording(url: str) -> bytes:
    """GET the recording: 200 only, at most MAX_FETCH_BYTES, within FETCH_TIMEOUT_S."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise FetchFailed(f"GET answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_FETCH_BYTES:
                    raise FetchFailed(f"the recording is over {MAX_FETCH_BYTES} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_FETCH_BYTES:
                        raise FetchFailed(f"the recording is over {MAX_FETCH_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
    except TimeoutError:
        raise FetchFailed(f"no complete answer within {FETCH_TIMEOUT_S:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}") from None


def _json(status: int, body: str | bytes, extra: dict[str, str] | None = None) -> Reply:
    data = body.encode() if isinstance(body, str) else body
    return status, {"content-type": "application/json", **(extra or {})}, data


def _error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Reply:
    return _json(status, json.dumps({"error": {"code": code, "message": message}}), extra)


def _invalid(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(parts)


async def handle(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    fetch: Fetch | None = None,
) -> Reply:
    """Serve the contract at `ROUTE`, as the dev server receives the request."""
    if path.rstrip("/") != ROUTE:
        return _error(404, "not_found", f"the analyzer serves POST {ROUTE}")
    if method.upper() != "POST":
        return _error(405, "method_not_allowed", f"{ROUTE} takes POST", {"allow": "POST"})
    try:
        request = AnalyzerRequest.model_validate_json(body)
    except ValidationError as exc:
        return _error(422, "invalid_request", _invalid(exc))
    declared = UNDECODABLE_FORMATS.get(request.recording.format.lower())
    if declared is not None:
        return _error(422, "unsupported", UNSUPPORTED.format(declared))
    try:
        audio = await (fetch or fetch_recording)(request.recording.url)
    except Exception as exc:  # any failure to get the bytes is the upstream's
        return _error(
            502, "fetch_failed", f"could not fetch the recording: {exc or type(exc).__name__}"
        )
    if hashlib.sha256(audio).hexdigest() != request.recording.sha256.strip().lower():
        return _error(422, "checksum_mismatch", "the fetched bytes do not match recording.sha256")
    try:
        response = await asyncio.to_thread(_analyze_bounded, request, audio)
    except AnalyzerError as exc:
        return _error(422, exc.code, exc.message)
    except Exception as exc:  # a bug here: the dev server's log gets the traceback
        traceback.print_exc()
        return _error(500, "internal", f"the signal analyzer failed: {type(exc).__name__}")
    return _json(200, response.model_dump_json())
