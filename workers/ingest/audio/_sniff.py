"""What the bytes are: the container a recording's first bytes announce.

`probe` picks the parser by the declared content type, but only after `sniff` has checked
that the first bytes are that format, so a PDF or an MP3 sent as audio/wav is refused, saying
what the bytes are. ID3v2 tags (possibly stacked) are skipped by their sizes first: they come
before MPEG audio and, rarely, before FLAC.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.audio._sparse import SparseFile, peek
from kernel.contracts.api import AUDIO_FORMATS


@dataclass(frozen=True)
class Seen:
    format: str | None  # one of FORMATS, or None when the bytes are not a recording we read
    what: str  # for messages: "a PDF document", "Ogg", ...
    start: int = 0  # where the container starts (after ID3v2 tags)


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1aE\xdf\xa3", "a WebM/Matroska file (not supported)"),
    (b"caff", "a CAF file (not supported)"),
    (b"#!AMR", "an AMR file (not supported)"),
    (b"0&\xb2u\x8ef\xcf\x11", "a WMA/ASF file (not supported)"),
    (b"wvpk", "a WavPack file (not supported)"),
    (b"MAC ", "a Monkey's Audio file (not supported)"),
    (b"MThd", "a MIDI file"),
    (b"\x7fELF", "an executable"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _signature(head: bytes) -> Seen:
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WAVE":
            return Seen("wav", "a WAV file")
        return Seen(None, {b"AVI ": "an AVI video", b"WEBP": "a WebP image"}.get(kind, "RIFF"))
    if head[:4] in (b"RF64", b"BW64"):
        return Seen(None, "an RF64 WAV with 64-bit sizes (not supported; export a plain WAV)")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Seen(None, "an AIFF file (not supported)")
    if head[:4] == b"fLaC":
        return Seen("flac", "a FLAC file")
    if head[:4] == b"OggS":
        return Seen("ogg", "an Ogg file")
    if head[4:8] in _MP4_BOXES:
        if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
            return Seen(None, "a HEIF/AVIF image")
        return Seen("m4a", "an MP4/M4A file")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        if (head[1] >> 1) & 3 == 0:  # layer bits 00: an ADTS header, not MPEG audio
            return Seen(None, "raw AAC (ADTS) audio; send AAC in an M4A (MP4) container")
        return Seen("mp3", "MPEG audio (MP3)")
    for magic, what in _OTHER_SIGNATURES:
        if head.startswith(magic):
            return Seen(None, what)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"<", b"{", b"[") or (
        head and all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    ):
        return Seen(None, "text")
    return Seen(None, f"unrecognised bytes ({head[:8].hex(' ')}...)" if head else "empty")


def sniff(f: SparseFile) -> Seen:
    start = 0
    head = peek(f, 0, 32)
    for _ in range(8):  # ID3v2 tags, possibly stacked, before MPEG audio (or, rarely, FLAC)
        if head[:3] != b"ID3" or len(head) < 10 or any(b & 0x80 for b in head[6:10]):
            break
        body = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start += 10 + body + (10 if head[5] & 0x10 else 0)
        head = peek(f, start, 32)
    if start == 0:
        return _signature(head)
    if not head:
        return Seen("mp3", "an ID3 tag and nothing after it", start)
    seen = _signature(head)
    if seen.format is not None:
        return Seen(seen.format, f"{seen.what} after an ID3 tag", start)
    return Seen("mp3", "MPEG audio (MP3) after an ID3 tag", start)  # mutagen looks for a sync


def looks_like(seen: Seen) -> str:
    if seen.format is not None:
        return f"they are {seen.what}; declare them as {AUDIO_FORMATS[seen.format][0]}"
    return f"they look like {seen.what}"
