"""How a probe fails: the ValidationFailed (422) errors `probe` raises, and `Broken`.

The container parsers raise `Broken` for what their own checks find wrong (a data chunk longer
than the file, no audio track, ...); `probe` renders it as unreadable_audio with its message.
Errors raised by mutagen itself are rendered the same way, their text shortened by `reason`.
"""

from __future__ import annotations

from kernel.runtime.errors import ValidationFailed

LABELS = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3", "ogg": "Ogg", "m4a": "M4A (MP4)"}
_A_LABEL = {
    "wav": "a WAV",
    "flac": "a FLAC",
    "mp3": "an MP3",
    "ogg": "an Ogg",
    "m4a": "an M4A (MP4)",
}


def empty(why: str) -> ValidationFailed:
    return ValidationFailed(f"the recording is empty: {why}", code="empty_audio")


def unreadable(fmt: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"the {LABELS[fmt]} headers are unreadable: {why}", code="unreadable_audio"
    )


def mismatch(fmt: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"the bytes are not {_A_LABEL[fmt]} recording: {why}", code="audio_type_mismatch"
    )


def reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()).strip("'\"")
    if not text or isinstance(exc, KeyError):
        text = f"{type(exc).__name__}({text})" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class Broken(Exception):
    """Raised by the parsers' own checks; rendered as unreadable_audio with its message."""
