"""ingest.audio.probe: recordings' container headers through range reads, never the whole file.

The fixtures (tests/fixtures/audio/, made by make_fixtures.py) are real encoder output with a
known length; large files are built sparsely (a reader that synthesises zeros between the real
pieces), so a 50 MB recording costs no memory here and the bytes the probe asked for are counted.
"""

from __future__ import annotations

import io
import json
import random
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

from emulator.r2 import EmulatedR2
from ingest import audio
from ingest.audio import FORMATS, AudioInfo, _sparse, format_for, probe
from kernel.runtime.errors import ValidationFailed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
EXPECTED: dict[str, dict[str, Any]] = json.loads((FIXTURES / "expected.json").read_text())
MB = 1024 * 1024
BIG = 50 * MB
CODES = {"empty_audio", "unsupported_audio_type", "audio_type_mismatch", "unreadable_audio"}


class Reader:
    """An async range reader over `pieces` ({offset: bytes}) in an object of `size` bytes;
    bytes no piece covers read as zeros. Counts what it is asked for."""

    def __init__(self, pieces: bytes | dict[int, bytes], size: int | None = None) -> None:
        self.pieces = {0: pieces} if isinstance(pieces, bytes) else pieces
        self.size = size if size is not None else max(o + len(p) for o, p in self.pieces.items())
        self.calls: list[tuple[int, int]] = []

    @property
    def bytes_read(self) -> int:
        return sum(min(n, max(0, self.size - o)) for o, n in self.calls)

    async def __call__(self, offset: int, length: int) -> bytes:
        assert offset >= 0 and length > 0, (offset, length)
        self.calls.append((offset, length))
        end = min(self.size, offset + length)
        out = bytearray(max(0, end - offset))
        for at, piece in self.pieces.items():
            lo, hi = max(offset, at), min(end, at + len(piece))
            if lo < hi:
                out[lo - offset : hi - offset] = piece[lo - at : hi - at]
        return bytes(out)


async def probe_bytes(data: bytes, content_type: str) -> AudioInfo:
    return await probe(Reader(data), len(data), content_type)


async def code_of(data: bytes | Reader, content_type: str) -> str:
    reader = data if isinstance(data, Reader) else Reader(data)
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, reader.size, content_type)
    assert caught.value.status == 422
    assert "Traceback" not in caught.value.message
    return str(caught.value.code)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def wav_header(
    data_bytes: int,
    *,
    rate: int = 44100,
    channels: int = 2,
    bits: int = 16,
    tag: int = 1,
    riff_size: int | None = None,
    extra: bytes = b"",
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", data_bytes)
    size = riff_size if riff_size is not None else len(body) + data_bytes
    return b"RIFF" + struct.pack("<I", size & 0xFFFFFFFF) + body


def boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """Top-level MP4 boxes (offset, length, name)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        length, name = struct.unpack_from(">I4s", data, pos)
        out.append((pos, length, name))
        pos += length
    return out


# --- content types ---------------------------------------------------------------------------
def test_format_for_content_types() -> None:
    assert format_for("audio/wav") == "wav"
    assert format_for("Audio/X-WAV") == "wav"
    assert format_for("audio/ogg; codecs=opus") == "ogg"
    assert format_for("audio/opus") == "ogg"
    assert format_for("audio/x-m4a") == "m4a"
    assert format_for("audio/aac") is None  # raw ADTS is not an M4A
    assert format_for("audio/webm") is None
    assert format_for("") is None
    assert {t: format_for(t) for types in FORMATS.values() for t in types} == {
        t: f for f, types in FORMATS.items() for t in types
    }


@pytest.mark.parametrize("ctype", ["audio/webm", "video/mp4", "application/pdf", "", "audio/aac"])
async def test_unsupported_content_type(ctype: str) -> None:
    reader = Reader(fixture("mono_44100.flac"))
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, reader.size, ctype)
    assert caught.value.code == "unsupported_audio_type"
    assert "audio/wav" in caught.value.message and "audio/mp4" in caught.value.message
    assert reader.calls == []  # refused before reading anything


# --- every fixture -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_fixture_probes_to_its_expected_values(name: str) -> None:
    want = EXPECTED[name]
    data = fixture(name)
    assert len(data) == want["size"] < 40 * 1024
    reader = Reader(data)
    info = await probe(reader, len(data), want["content_type"])
    assert (info.format, info.codec, info.sample_rate, info.channels) == (
        want["format"],
        want["codec"],
        want["sample_rate"],
        want["channels"],
    )
    assert info.duration_s == pytest.approx(want["duration_s"], abs=want["duration_tolerance_s"])
    assert info.bitrate is None or info.bitrate > 0
    assert len(reader.calls) == 1 and reader.bytes_read == len(data)  # small: one read


def test_fixture_layouts_are_what_the_tests_claim() -> None:
    moov_last = [n for _, _, n in boxes(fixture("aac_stereo_44100_moov_last.m4a"))]
    assert moov_last.index(b"moov") > moov_last.index(b"mdat")
    faststart = [n for _, _, n in boxes(fixture("aac_mono_48000_faststart.m4a"))]
    assert faststart.index(b"moov") < faststart.index(b"mdat")
    fragmented = [n for _, _, n in boxes(fixture("aac_stereo_48000_fragmented.m4a"))]
    assert b"moof" in fragmented
    assert fixture("stereo_44100_id3.mp3")[:3] == b"ID3"
    assert fixture("mono_22050.mp3")[:2] == b"\xff\xf3"  # no tag: a frame (with a Xing header)


async def test_stdlib_wave_file() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x01\x00\xff\xff" * 8000)
    info = await probe_bytes(buf.getvalue(), "audio/vnd.wave")
    assert info == AudioInfo("wav", "pcm", 0.5, 16000, 2, 16000 * 4 * 8)


async def test_through_the_emulated_r2(tmp_path: Path) -> None:
    r2 = EmulatedR2(tmp_path / "r2")
    try:
        for name, want in EXPECTED.items():
            key = f"t1/recordings/{name}"
            info = await r2.put(key, fixture(name), content_type=want["content_type"])

            async def read(offset: int, length: int, key: str = key) -> bytes:
                return await r2.get_range(key, offset, length) or b""

            got = await probe(read, info.size, want["content_type"])
            assert (got.format, got.codec) == (want["format"], want["codec"]), name
    finally:
        r2.close()


# --- large recordings: only the headers are read -----------------------------------------------
async def test_large_wav_reads_only_head_and_tail() -> None:
    header = wav_header(BIG - 44)
    assert len(header) == 44
    reader = Reader({0: header}, size=BIG)
    info = await probe(reader, BIG, "audio/wav")
    assert info.duration_s == pytest.approx((BIG - 44) / 4 / 44100, abs=1e-6)
    assert (info.sample_rate, info.channels, info.codec) == (44100, 2, "pcm")
    assert reader.bytes_read < 1 * MB, reader.calls
    assert max(o + n for o, n in reader.calls) <= BIG


async def test_large_m4a_with_moov_at_the_end() -> None:
    small = fixture("aac_stereo_44100_moov_last.m4a")
    layout = boxes(small)
    [(mdat_at, _, _)] = [b for b in layout if b[2] == b"mdat"]
    [(moov_at, moov_len, _)] = [b for b in layout if b[2] == b"moov"]
    big_mdat = BIG - mdat_at - moov_len
    head = small[:mdat_at] + struct.pack(">I4s", big_mdat, b"mdat")
    reader = Reader({0: head, mdat_at + big_mdat: small[moov_at:]}, size=BIG)
    info = await probe(reader, BIG, "audio/mp4")
    assert (info.codec, info.sample_rate, info.channels) == ("aac", 44100, 2)
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    assert reader.bytes_read < 1 * MB


async def test_large_fragmented_m4a_reads_the_last_fragment_in_the_tail() -> None:
    small = fixture("aac_stereo_48000_fragmented.m4a")
    layout = boxes(small)
    [(moof_at, _, _)] = [b for b in layout if b[2] == b"moof"]
    filler = BIG - len(small)  # a free box between the header and the (only) fragment
    head = small[:moof_at] + struct.pack(">I4s", filler, b"free")
    reader = Reader({0: head, moof_at + filler: small[moof_at:]}, size=BIG)
    info = await probe(reader, BIG, "audio/mp4")
    assert info.duration_s == pytest.approx(1.0, abs=0.05)
    assert reader.bytes_read < 1 * MB


async def test_fragmented_m4a_with_many_fragments_is_not_walked() -> None:
    """The length of a long fragmented recording is where its last fragment ends (tfdt, the
    base time, + trun's durations); the fragments in between are never read."""
    small = fixture("aac_stereo_48000_fragmented.m4a")
    layout = boxes(small)
    [(moof_at, _, _)] = [b for b in layout if b[2] == b"moof"]
    tfdt = small.index(b"tfdt") - 4
    assert small[tfdt + 8] == 1  # version 1: a 64-bit base media decode time
    base = 100 * 48000  # the last fragment starts at 100 s
    last = patch(small, tfdt + 12, struct.pack(">Q", base))[moof_at:]
    reader = Reader({0: small, BIG - len(last): last}, size=BIG)  # zeros between: not walked
    info = await probe(reader, BIG, "audio/mp4")
    fragment = (await probe_bytes(small, "audio/mp4")).duration_s  # its trun: 1.0213 s
    assert info.duration_s == pytest.approx(100 + fragment, abs=1e-6)
    assert reader.bytes_read < 1 * MB


async def test_large_flac_and_mp3_read_only_their_heads() -> None:
    for name, ctype, seconds in (
        ("mono_44100.flac", "audio/flac", 1.5),
        ("mono_22050.mp3", "audio/mpeg", 2.0),
    ):
        data = fixture(name)
        reader = Reader({0: data}, size=BIG)  # the rest of the 50 MB reads as zeros
        info = await probe(reader, BIG, ctype)
        assert info.duration_s == pytest.approx(seconds, abs=0.01), name
        assert reader.bytes_read < 1 * MB


async def test_mp3_with_a_huge_id3_tag_skips_it() -> None:
    tag_body = 20 * MB
    syncsafe = bytes((tag_body >> s) & 0x7F for s in (21, 14, 7, 0))
    frames = fixture("mono_22050.mp3")
    at = 10 + tag_body
    reader = Reader({0: b"ID3\x03\x00\x00" + syncsafe, at: frames}, size=at + len(frames))
    info = await probe(reader, reader.size, "audio/mpeg")
    assert info.duration_s == pytest.approx(2.0, abs=0.01)
    assert reader.bytes_read < 1.5 * MB, reader.calls


def ogg_pages(data: bytes) -> list[Any]:
    from mutagen.ogg import OggPage

    f, pages = io.BytesIO(data), []
    while f.tell() < len(data):
        pages.append(OggPage(f))
    return pages


@pytest.mark.parametrize("end_of_stream", [True, False])
async def test_large_ogg_reads_the_last_page_from_the_tail(end_of_stream: bool) -> None:
    pages = ogg_pages(fixture("opus_mono_48000.ogg"))
    assert pages[-1].last and pages[0].first
    last = pages[-1]
    last.last = end_of_stream  # a recorder that was cut off never writes end-of-stream
    head = b"".join(p.write() for p in pages[:3])
    tail = last.write()
    reader = Reader({0: head, BIG - len(tail): tail}, size=BIG)
    info = await probe(reader, BIG, "audio/ogg")
    assert (info.codec, info.sample_rate, info.channels) == ("opus", 48000, 1)
    assert info.duration_s == pytest.approx(2.0, abs=0.03)
    assert reader.bytes_read < 1 * MB


# --- the fetch budget ------------------------------------------------------------------------
async def test_headers_needing_more_than_the_byte_budget_are_refused() -> None:
    # A FLAC whose PICTURE block claims 12 MB: mutagen reads the picture data.
    streaminfo = fixture("mono_44100.flac")[4:42]
    assert streaminfo[0] & 0x7F == 0
    streaminfo = bytes([streaminfo[0] & 0x7F]) + streaminfo[1:]  # not the last block
    picture_len = 12 * MB
    fields = struct.pack(">II", 3, 9) + b"image/png" + struct.pack(">I", 0)
    fields += struct.pack(">5I", 1, 1, 24, 0, picture_len)
    block = bytes([0x80 | 6]) + (len(fields) + picture_len).to_bytes(3, "big") + fields
    reader = Reader({0: b"fLaC" + streaminfo + block}, size=BIG)
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, BIG, "audio/flac")
    assert caught.value.code == "unreadable_audio"
    assert "8 MiB" in caught.value.message
    assert reader.bytes_read <= _sparse.MAX_FETCH_BYTES


async def test_headers_needing_too_many_reads_are_refused() -> None:
    # 60 one-megabyte free boxes before moov: one header per megabyte, one read each.
    pieces = {0: struct.pack(">I4s4sI", 24, b"ftyp", b"M4A ", 0) + b"M4A isom"}
    pos = 24
    for _ in range(60):
        pieces[pos] = struct.pack(">I4s", MB, b"free")
        pos += MB
    reader = Reader(pieces, size=pos + 1000)
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, reader.size, "audio/mp4")
    assert caught.value.code == "unreadable_audio"
    assert f"{_sparse.MAX_FETCHES} reads" in caught.value.message
    assert len(reader.calls) <= _sparse.MAX_FETCHES


def test_need_range_cannot_be_swallowed_by_except_exception() -> None:
    assert issubclass(_sparse.NeedRange, BaseException)
    assert not issubclass(_sparse.NeedRange, Exception)


# --- empty ------------------------------------------------------------------------------------
async def test_zero_bytes_is_empty() -> None:
    reader = Reader(b"", size=0)
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, 0, "audio/wav")
    assert caught.value.code == "empty_audio"
    assert caught.value.message.startswith("the recording is empty: ")
    assert reader.calls == []


async def test_no_frames_is_empty() -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    assert await code_of(buf.getvalue(), "audio/wav") == "empty_audio"
    id3_only = b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\x00" * 16
    assert await code_of(id3_only, "audio/mpeg") == "empty_audio"
    headers_only = b"".join(p.write() for p in ogg_pages(fixture("opus_mono_48000.ogg"))[:2])
    assert await code_of(headers_only, "audio/ogg") == "empty_audio"


# --- not what was declared -------------------------------------------------------------------
async def test_pdf_declared_as_wav() -> None:
    pdf = (FIXTURES.parent / "pdfs" / "anysize.pdf").read_bytes()
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(pdf, "audio/wav")
    assert caught.value.code == "audio_type_mismatch"
    assert "a PDF document" in caught.value.message and "WAV" in caught.value.message


async def test_mp3_declared_as_flac_names_the_right_type() -> None:
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(fixture("stereo_44100_id3.mp3"), "audio/flac")
    assert caught.value.code == "audio_type_mismatch"
    assert "MP3" in caught.value.message and "audio/mpeg" in caught.value.message


@pytest.mark.parametrize(
    ("name", "declared"),
    [
        ("pcm16_mono_22050.wav", "audio/mpeg"),
        ("mono_44100.flac", "audio/ogg"),
        ("vorbis_stereo_44100.ogg", "audio/mp4"),
        ("aac_mono_48000_faststart.m4a", "audio/wav"),
        ("mono_22050.mp3", "audio/x-m4a"),
        ("flac_mono_22050.oga", "audio/flac"),  # FLAC in Ogg is Ogg
    ],
)
async def test_other_recording_formats_are_mismatches(name: str, declared: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(fixture(name), declared)
    assert caught.value.code == "audio_type_mismatch"
    actual = EXPECTED[name]["format"]
    assert FORMATS[actual][0] in caught.value.message  # says what to declare instead


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x1aE\xdf\xa3" + b"\x00" * 60, "WebM"),
        (b"\xff\xf1\x50\x80" + b"\x00" * 60, "ADTS"),
        (b"<!DOCTYPE html><html></html>", "text"),
        (b"RF64" + b"\x00" * 60, "RF64"),
    ],
)
async def test_recognised_non_recordings_say_what_they_are(data: bytes, what: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(data, "audio/wav")
    assert caught.value.code == "audio_type_mismatch"
    assert what in caught.value.message


async def test_random_bytes_declared_as_mp3() -> None:
    noise = random.Random(7).randbytes(300_000)
    assert await code_of(noise, "audio/mpeg") == "audio_type_mismatch"


async def test_junk_before_the_first_mp3_frame_is_tolerated() -> None:
    data = b"\x00" * 700 + fixture("mono_22050.mp3")
    info = await probe_bytes(data, "audio/mpeg")
    assert info.duration_s == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n]["format"] != "mp3"))
async def test_broken_magic_is_a_mismatch(name: str) -> None:
    data = bytearray(fixture(name))
    at = 4 if EXPECTED[name]["format"] == "m4a" else 0  # an MP4 starts with a box size
    for i in range(at, at + 4):
        data[i] ^= 0xFF
    assert await code_of(bytes(data), EXPECTED[name]["content_type"]) == "audio_type_mismatch"


# --- damaged ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_cut_at_100_bytes_is_unreadable(name: str) -> None:
    data = fixture(name)[:100]
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(data, EXPECTED[name]["content_type"])
    assert caught.value.code == "unreadable_audio", caught.value.message
    label = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3", "ogg": "Ogg", "m4a": "M4A"}
    assert caught.value.message.startswith(f"the {label[EXPECTED[name]['format']]}")


@pytest.mark.parametrize(
    "name",
    [
        "pcm16_stereo_22050.wav",
        "stereo_48000.flac",
        "aac_stereo_44100_moov_last.m4a",
        "aac_mono_48000_faststart.m4a",
        "stereo_44100_id3.mp3",
    ],
)
async def test_cut_in_half_is_caught_where_the_headers_tell(name: str) -> None:
    data = fixture(name)
    with pytest.raises(ValidationFailed) as caught:
        await probe_bytes(data[: len(data) // 2], EXPECTED[name]["content_type"])
    message = caught.value.message
    assert caught.value.code == "unreadable_audio"
    assert "truncated" in message


def patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


async def test_damaged_header_fields() -> None:
    wav = fixture("pcm16_mono_22050.wav")
    assert wav[20:22] == b"\x01\x00"  # fmt: format tag, channels, sample rate at 20, 22, 24
    cases = {
        "channels 0": (patch(wav, 22, b"\x00\x00"), "audio/wav", "channel count"),
        "channels 100": (patch(wav, 22, struct.pack("<H", 100)), "audio/wav", "channel count"),
        "rate 1 MHz": (patch(wav, 24, struct.pack("<I", 1_000_000)), "audio/wav", "sample rate"),
        "adpcm, no fact": (patch(wav, 20, struct.pack("<H", 0x11)), "audio/wav", "fact chunk"),
    }
    flac = fixture("mono_44100.flac")
    assert flac[4] & 0x7F == 0  # STREAMINFO: sample rate in the 20 bits at 18..20.5
    cases["flac rate 0"] = (
        patch(flac, 18, b"\x00\x00" + bytes([flac[20] & 0x0F])),
        "audio/flac",
        "sample rate",
    )
    opus = fixture("opus_mono_48000.ogg")
    head_at = opus.index(b"OpusHead")
    cases["opus v16"] = (patch(opus, head_at + 8, b"\x10"), "audio/ogg", "version")
    m4a = fixture("aac_mono_48000_faststart.m4a")
    cases["no sound track"] = (m4a.replace(b"soun", b"vide"), "audio/mp4", "audio track")
    for label, (data, ctype, needle) in cases.items():
        with pytest.raises(ValidationFailed) as caught:
            await probe_bytes(data, ctype)
        assert caught.value.code == "unreadable_audio", (label, caught.value.message)
        assert needle in caught.value.message, (label, caught.value.message)


async def test_wav_sizes() -> None:
    # The streaming placeholder 0xFFFFFFFF: "until the end of the file".
    streamed = wav_header(0xFFFFFFFF, riff_size=0xFFFFFFFF) + b"\x00" * 44100 * 4
    info = await probe_bytes(streamed, "audio/wav")
    assert info.duration_s == pytest.approx(1.0)
    # A data chunk claiming more than the file holds is a truncated upload.
    assert await code_of(wav_header(44100 * 4) + b"\x00" * 1000, "audio/wav") == "unreadable_audio"
    # ADPCM with a fact chunk: the length is its sample count.
    fact = b"fact" + struct.pack("<II", 4, 16000)
    adpcm = wav_header(4000, rate=8000, channels=1, bits=4, tag=0x11, extra=fact) + b"\x00" * 4000
    info = await probe_bytes(adpcm, "audio/wav")
    assert (info.codec, info.duration_s) == ("adpcm_ima", 2.0)


async def test_more_than_six_hours_is_refused() -> None:
    seconds = 7 * 3600
    header = wav_header(8000 * seconds, rate=8000, channels=1, bits=8)
    reader = Reader({0: header}, size=len(header) + 8000 * seconds)  # 201.6 MB, sparse
    with pytest.raises(ValidationFailed) as caught:
        await probe(reader, reader.size, "audio/wav")
    assert caught.value.code == "unreadable_audio"
    assert "duration" in caught.value.message


async def test_object_shorter_than_its_size() -> None:
    data = fixture("mono_44100.flac")

    async def short(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    with pytest.raises(ValidationFailed) as caught:
        await probe(short, len(data) + 5000, "audio/flac")
    assert caught.value.code == "unreadable_audio"
    assert "ended at byte" in caught.value.message


def mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        b = bytearray(data)
        if rng.random() < 0.3:
            b = b[: rng.randrange(1, len(b))]
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(b), 2048))
            b[i] = rng.randrange(256)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_damaged_bytes_never_escape_as_other_errors(name: str) -> None:
    """Random damage to the headers: a plausible AudioInfo or a 422 with one of the codes,
    never another exception (mutagen's own errors, struct.error, IndexError, ...)."""
    want = EXPECTED[name]
    for i, data in enumerate(mutations(fixture(name), seed=len(name), count=60)):
        reader = Reader(data)
        try:
            info = await probe(reader, len(data), want["content_type"])
        except ValidationFailed as exc:
            assert exc.code in CODES, (i, exc.code)
            assert len(exc.message) < 400 and "Traceback" not in exc.message
            continue
        assert info.format == want["format"]
        assert 1 <= info.sample_rate <= audio.MAX_SAMPLE_RATE and 1 <= info.channels <= 64
        assert 0 < info.duration_s <= audio.MAX_DURATION_S


# --- the sparse file itself ------------------------------------------------------------------
async def test_sparse_file_reads_only_what_was_fetched() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    reader = Reader(data)
    source = _sparse.Source(reader, len(data), "wav")
    await source.prefetch()
    f = _sparse.SparseFile(source)
    assert f.read(4) == data[:4]
    f.seek(-10, io.SEEK_END)
    assert f.read() == data[-10:]
    f.seek(len(data) // 2)
    with pytest.raises(_sparse.NeedRange) as need:
        f.read(100)
    assert (need.value.offset, need.value.length) == (len(data) // 2, 100)
    await source.fetch(need.value.offset, need.value.length)
    assert f.read(100) == data[len(data) // 2 : len(data) // 2 + 100]
    assert reader.calls[-1][1] >= _sparse.MIN_FETCH  # rounded up
    f.seek(len(data) + 10)
    assert f.read(5) == b""  # past the end: EOF, not a fetch
    with pytest.raises(OSError):
        f.seek(-1)


def test_every_audio_type_can_be_uploaded_and_probed() -> None:
    from typing import get_args

    from kernel.contracts.api import AUDIO_TYPES, UploadType

    uploadable = set(get_args(UploadType))
    assert set(AUDIO_TYPES) <= uploadable
    assert all(audio.format_for(t) is not None for t in AUDIO_TYPES)
    assert {t for t in uploadable if audio.format_for(t)} == set(AUDIO_TYPES)
