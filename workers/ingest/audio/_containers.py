"""WAV, FLAC, MP3 and Ogg: stream information by mutagen, checked against the bytes there.

Synchronous, over a SparseFile: any read may raise NeedRange (`probe` fetches and reruns).
Only stream information is parsed, not tags (cover art can be megabytes, and broken tags do
not make the audio unreadable). Each parser returns a `Raw` or raises `Broken`:

- wav   mutagen.wave: WaveStreamInfo + its RIFF chunk walker (data/fact chunks; a data chunk
        that claims more than the file holds is a truncated upload, except the streaming
        placeholder 0xFFFFFFFF, which means "to the end")
- flac  mutagen.flac.FLAC (metadata blocks; STREAMINFO gives the length)
- mp3   mutagen.mp3.MPEGInfo (skips ID3v2 tags by their size; Xing/VBRI/LAME headers, else the
        length is estimated from the size and the first frame's bitrate, as mutagen does)
- ogg   mutagen.oggvorbis / oggopus / oggflac / oggspeex, by the first page's codec header.
        The length is the last page's granule position; mutagen looks for it in the last
        64 KiB only when that page ends the stream, and otherwise reads the whole file, so
        here the last page of the stream is looked for in the tail first (recordings that
        were cut off have no end-of-stream page)

The Ogg length and the WAV chunk walk use mutagen's semi-private parts (`_post_tags`,
`wave._WaveFile`): mutagen 1.48.1 is pinned (requirements/runtime.txt). mutagen is imported
inside the parsers, only when a probe runs.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ingest.audio._errors import Broken, empty, mismatch, reason
from ingest.audio._sniff import Seen, looks_like
from ingest.audio._sparse import TAIL_BYTES, SparseFile, peek


@dataclass(frozen=True)
class Raw:
    """What a parser read from the headers; `probe` checks that it is plausible."""

    codec: str
    duration_s: float
    sample_rate: int
    channels: int
    bitrate: int | None


_WAV_CODECS = {
    0x0001: "pcm",
    0x0003: "pcm_float",
    0x0006: "alaw",
    0x0007: "mulaw",
    0x0002: "adpcm_ms",
    0x0011: "adpcm_ima",
    0x0031: "gsm610",
    0x0050: "mp2",
    0x0055: "mp3",
}
_WAV_FRAMED = {0x0001, 0x0003, 0x0006, 0x0007}  # one block_align per sample frame
_WAV_UNKNOWN_SIZES = (0xFFFFFFFF, 0x7FFFFFFF)  # streaming writers' "until the end" placeholders


def parse_wav(f: SparseFile) -> Raw:
    from mutagen.wave import WaveStreamInfo, _WaveFile

    info = WaveStreamInfo(f)
    riff = _WaveFile(f)
    fmt_chunk = riff["fmt"].read()
    tag, _channels, _rate, byte_rate, block_align, _bits = struct.unpack_from("<HHIIHH", fmt_chunk)
    if tag == 0xFFFE and len(fmt_chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the GUID says it
        tag = struct.unpack_from("<H", fmt_chunk, 24)[0]
    codec = _WAV_CODECS.get(tag, f"wav_0x{tag:04x}")
    sample_rate, channels = int(info.sample_rate), int(info.channels)
    if "data" not in riff:
        raise Broken("no data chunk")
    data = riff["data"]
    available = max(0, f.seek(0, io.SEEK_END) - data.data_offset)
    declared = int(data.data_size)
    if declared == 0:
        raise empty("the WAV data chunk has 0 bytes")
    if declared in _WAV_UNKNOWN_SIZES:
        declared = available
    elif declared > available + max(1, block_align):
        raise Broken(
            f"the data chunk declares {declared} bytes but the file holds {available}"
            " (a truncated upload?)"
        )
    if sample_rate <= 0:
        raise Broken(f"sample rate {sample_rate} Hz")
    if tag in _WAV_FRAMED:
        if block_align <= 0:
            raise Broken("block align 0 in the fmt chunk")
        frames = min(declared, available) // block_align
    elif "fact" in riff:
        frames = struct.unpack_from("<I", riff["fact"].read())[0]
    else:
        raise Broken(f"codec {codec} without a fact chunk, so the length is unknown")
    return Raw(codec, frames / sample_rate, sample_rate, channels, byte_rate * 8 or None)


def parse_flac(f: SparseFile, start: int) -> Raw:
    from mutagen.flac import FLAC

    f.seek(0)  # FLAC reads from where the file is
    info = FLAC(f).info
    rate, channels = int(info.sample_rate), int(info.channels)
    total = int(info.total_samples)
    audio_bytes = f.seek(0, io.SEEK_END) - _flac_audio_offset(f, start)
    if total == 0:  # "unknown" in STREAMINFO, or really no samples
        if audio_bytes <= 0:
            raise empty("no audio frames after the FLAC headers")
        raise Broken(
            "STREAMINFO gives no sample count (a streamed FLAC?), so the length is unknown"
        )
    # Every frame is at least min_framesize bytes and holds at most max_blocksize samples.
    min_frame, max_block = int(info.min_framesize), int(info.max_blocksize)
    if min_frame and max_block:
        least = min_frame * -(-total // max_block)
        if audio_bytes < least:
            raise Broken(
                f"STREAMINFO promises {total} samples, at least {least} bytes of frames, but"
                f" {max(0, audio_bytes)} bytes follow the headers (a truncated upload?)"
            )
    return Raw("flac", float(info.length), rate, channels, int(info.bitrate) or None)


def _flac_audio_offset(f: SparseFile, start: int) -> int:
    pos = start + 4  # "fLaC", then metadata blocks: 1 byte type|last, 3 bytes length
    for _ in range(1024):
        header = peek(f, pos, 4)
        if len(header) < 4:
            raise Broken("the metadata blocks run past the end of the file")
        pos += 4 + int.from_bytes(header[1:4], "big")
        if header[0] & 0x80:
            return pos
    raise Broken("too many metadata blocks")


def parse_mp3(f: SparseFile, seen: Seen) -> Raw:
    from mutagen.mp3 import HeaderNotFoundError, MPEGInfo

    size = f.seek(0, io.SEEK_END)
    if seen.start >= size:
        raise empty("an ID3 tag and no MPEG audio after it")
    try:
        info = MPEGInfo(f)
    except HeaderNotFoundError as exc:
        if seen.format == "mp3" and seen.start:
            raise Broken(f"no MPEG audio frame after the ID3 tag ({reason(exc)})") from exc
        if seen.format == "mp3":
            raise Broken(f"no run of valid MPEG audio frames ({reason(exc)})") from exc
        raise mismatch(
            "mp3", f"no MPEG audio frame in the first 1 MiB; {looks_like(seen)}"
        ) from exc
    layer = int(getattr(info, "layer", 3))
    bitrate, length = int(info.bitrate), float(info.length)
    # With a Xing/VBRI header the length comes from its frame count, not from the size: a cut
    # off file would still claim its full length. Compare with the bytes really there.
    expected = bitrate * length / 8
    available = size - int(getattr(info, "frame_offset", seen.start))
    if available < expected * 0.9 and expected - available > 1024:
        raise Broken(
            f"the headers promise {length:.1f} s at {bitrate // 1000} kbit/s but only"
            f" {available} bytes of audio follow (a truncated upload?)"
        )
    return Raw(f"mp{layer}", length, int(info.sample_rate), int(info.channels), bitrate or None)


# Ogg: the codec is told by the first packet of a beginning-of-stream page.
_OGG_CODECS = (
    (b"\x01vorbis", "vorbis"),
    (b"OpusHead", "opus"),
    (b"\x7fFLAC", "flac"),
    (b"Speex   ", "speex"),
)


def parse_ogg(f: SparseFile) -> Raw:
    from mutagen.ogg import OggPage

    f.seek(0)
    codec = None
    for _ in range(16):  # every stream's first page comes before any other page
        page = OggPage(f)
        if not page.first:
            break
        packet = page.packets[0] if page.packets else b""
        codec = next((name for magic, name in _OGG_CODECS if packet.startswith(magic)), None)
        if codec is not None:
            break
    if codec is None:
        raise Broken("no Vorbis, Opus, FLAC or Speex stream")
    f.seek(0)
    audio = _ogg_types()[codec](f)
    info: Any = audio.info
    rate = 48000 if codec == "opus" else int(info.sample_rate)  # Opus always decodes at 48 kHz
    bitrate = int(getattr(info, "bitrate", 0) or 0)
    return Raw(codec, float(info.length), rate, int(info.channels), bitrate or None)


def _last_granule(fileobj: Any, serial: int) -> int | None:
    """The granule position of the last page of `serial` that finishes a packet, looked for in
    the last TAIL_BYTES of the file; None when no such page is there."""
    from mutagen.ogg import OggPage

    size = fileobj.seek(0, io.SEEK_END)
    start = max(0, size - TAIL_BYTES)
    fileobj.seek(start)
    data = fileobj.read(size - start)
    at = len(data)
    while (at := data.rfind(b"OggS", 0, at)) >= 0:
        try:
            page = OggPage(io.BytesIO(data[at:]))
        except Exception:  # "OggS" inside a packet, or a page cut off by the file's end
            continue
        if page.serial == serial and page.position != -1:
            return int(page.position)
    return None


def _set_length(info: Any, seconds: float) -> None:
    info.length = seconds  # some mutagen Info classes declare `length = 0`, an int


@cache
def _ogg_types() -> dict[str, Callable[[Any], Any]]:
    """mutagen's Ogg file types with `_post_tags` (where the length is read) looking in the
    tail before falling back to mutagen's whole-file walk (within the fetch budget)."""
    from mutagen.oggflac import OggFLAC, OggFLACStreamInfo
    from mutagen.oggopus import OggOpus, OggOpusInfo
    from mutagen.oggspeex import OggSpeex, OggSpeexInfo
    from mutagen.oggvorbis import OggVorbis, OggVorbisInfo

    class VorbisInfo(OggVorbisInfo):
        def _post_tags(self, fileobj: Any) -> None:
            granule = _last_granule(fileobj, self.serial)
            if granule is None:
                super()._post_tags(fileobj)
            else:
                _set_length(self, granule / float(self.sample_rate))

    class OpusInfo(OggOpusInfo):
        def _post_tags(self, fileobj: Any) -> None:
            here = fileobj.tell()  # after the tags: the rest is audio
            audio_size = fileobj.seek(0, io.SEEK_END) - here
            granule = _last_granule(fileobj, self.serial)
            if granule is None:
                super()._post_tags(fileobj)
                return
            seconds = (granule - int(getattr(self, "_OggOpusInfo__pre_skip", 0))) / 48000.0
            _set_length(self, seconds)
            self.bitrate = round(audio_size * 8 / seconds) if seconds > 0 else 0

    class FlacInfo(OggFLACStreamInfo):
        def _post_tags(self, fileobj: Any) -> None:
            if self.length:
                return
            granule = _last_granule(fileobj, self.serial)
            if granule is None:
                super()._post_tags(fileobj)
            else:
                _set_length(self, granule / float(self.sample_rate))

    class SpeexInfo(OggSpeexInfo):
        def _post_tags(self, fileobj: Any) -> None:
            granule = _last_granule(fileobj, self.serial)
            if granule is None:
                super()._post_tags(fileobj)
            else:
                _set_length(self, granule / float(self.sample_rate))

    class Vorbis(OggVorbis):
        _Info = VorbisInfo

    class Opus(OggOpus):
        _Info = OpusInfo

    class Flac(OggFLAC):
        _Info = FlacInfo

    class Speex(OggSpeex):
        _Info = SpeexInfo

    return {"vorbis": Vorbis, "opus": Opus, "flac": Flac, "speex": Speex}
