"""Recordings' container headers: format, codec, duration, sample rate, channels — by range reads.

A recording can be ~200 MB and the ingest Worker's heap budget is 64 MB, so `probe` never
loads the object: it reads what the headers need through `read(offset, length)`, an async range
reader (R2 `get_range`), and mutagen (pure Python, runs in Pyodide) parses them. The parts:

- _sparse      the sparse file mutagen reads (head and tail fetched up front; a read outside
               the fetched bytes is fetched and the parser rerun, within a fetch budget)
- _sniff       what the first bytes are, checked against the declared content type
- _containers  WAV, FLAC, MP3 and Ogg stream information
- _mp4         M4A (MP4), fragmented MP4 included
- _errors      the ValidationFailed (422) errors `probe` raises

mutagen is imported only when a probe runs (importing this package does not load it); its
version is pinned (requirements/runtime.txt) as semi-private parts of it are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ingest.audio._containers import Raw, parse_flac, parse_mp3, parse_ogg, parse_wav
from ingest.audio._errors import LABELS, Broken, empty, mismatch, reason, unreadable
from ingest.audio._mp4 import parse_m4a
from ingest.audio._sniff import looks_like, sniff
from ingest.audio._sparse import NeedRange, Reader, Source, SparseFile
from kernel.contracts.api import AUDIO_FORMATS
from kernel.runtime.errors import ValidationFailed

__all__ = ["FORMATS", "AudioInfo", "format_for", "probe"]

MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64
MAX_DURATION_S = 6 * 3600.0


@dataclass(frozen=True)
class AudioInfo:
    format: str  # wav | flac | mp3 | ogg | m4a
    codec: str  # pcm, pcm_float, alaw, mulaw, flac, mp3, mp2, vorbis, opus, speex, aac, alac...
    duration_s: float
    sample_rate: int
    channels: int
    bitrate: int | None  # bits per second, as the headers state or imply


# format -> accepted content types (the first is the canonical one)
FORMATS = AUDIO_FORMATS  # format → the content types that name it (kernel.contracts.api)
_BY_TYPE = {ctype: fmt for fmt, types in FORMATS.items() for ctype in types}


def format_for(content_type: str) -> str | None:
    """The format a content type declares ("audio/ogg; codecs=opus" -> "ogg"), or None."""
    return _BY_TYPE.get(content_type.split(";", 1)[0].strip().lower())


async def probe(read: Reader, size: int, content_type: str) -> AudioInfo:
    """Read a recording's container headers through `read(offset, length)` (an object of
    `size` bytes declared as `content_type`). Raises ValidationFailed (422) with code
    unsupported_audio_type, empty_audio, audio_type_mismatch or unreadable_audio."""
    fmt = format_for(content_type)
    if fmt is None:
        accepted = ", ".join(t for types in FORMATS.values() for t in types)
        raise ValidationFailed(
            f"{content_type!r} is not a supported recording type; send one of: {accepted}",
            code="unsupported_audio_type",
        )
    if size <= 0:
        raise empty("the file has 0 bytes")
    source = Source(read, size, fmt)
    await source.prefetch()
    while True:
        try:
            raw = _inspect(source, fmt)
        except NeedRange as need:
            await source.fetch(need.offset, need.length)
            continue
        except ValidationFailed:
            raise
        except Exception as exc:  # mutagen's errors, struct.error, ...: damaged headers
            raise unreadable(fmt, reason(exc)) from exc
        return _checked(fmt, raw)


def _inspect(source: Source, fmt: str) -> Raw:
    """One synchronous parse of the fetched bytes (may raise NeedRange)."""
    f = SparseFile(source)
    seen = sniff(f)
    if seen.format != fmt:
        lenient_mp3 = fmt == "mp3" and seen.what.startswith("unrecognised")
        if not lenient_mp3:  # MP3 may start with junk before the first frame: let mutagen look
            raise mismatch(fmt, looks_like(seen))
    try:
        if fmt == "wav":
            return parse_wav(f)
        if fmt == "flac":
            return parse_flac(f, seen.start)
        if fmt == "mp3":
            return parse_mp3(f, seen)
        if fmt == "ogg":
            return parse_ogg(f)
        return parse_m4a(f, source)
    except Broken as exc:
        raise unreadable(fmt, str(exc)) from exc


def _checked(fmt: str, raw: Raw) -> AudioInfo:
    if not 1 <= raw.sample_rate <= MAX_SAMPLE_RATE:
        raise unreadable(fmt, f"an implausible sample rate ({raw.sample_rate} Hz)")
    if not 1 <= raw.channels <= MAX_CHANNELS:
        raise unreadable(fmt, f"an implausible channel count ({raw.channels})")
    if not math.isfinite(raw.duration_s):
        raise unreadable(fmt, "no finite duration")
    if raw.duration_s <= 0:
        raise empty(f"its {LABELS[fmt]} headers give a duration of 0 s (no audio frames)")
    if raw.duration_s > MAX_DURATION_S:
        raise unreadable(
            fmt,
            f"an implausible duration ({raw.duration_s / 3600:.1f} h; at most"
            f" {MAX_DURATION_S / 3600:.0f} h)",
        )
    bitrate = raw.bitrate if raw.bitrate and raw.bitrate > 0 else None
    return AudioInfo(
        format=fmt,
        codec=raw.codec,
        duration_s=round(raw.duration_s, 6),
        sample_rate=raw.sample_rate,
        channels=raw.channels,
        bitrate=bitrate,
    )
