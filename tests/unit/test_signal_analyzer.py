"""The local signal analyzer (emulator/analyzer.py, emulator/signal.py) on synthesised signals
with fixed seeds: what each measurement reads, what it leaves out, and the HTTP contract."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import math
import struct
import wave
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import pytest

from emulator import analyzer
from emulator.analyzer import FetchFailed, analyze, fetch_recording, handle, segment_spans
from emulator.signal import AnalyzerError, decode
from kernel.contracts.analyzer import AnalyzerRequest, AnalyzerResponse, Dimension, RecordingRef

SR = 22050
ALL = ("loudness", "dynamic_range", "onset_density", "tempo_stability", "pitch_stability")
F32 = npt.NDArray[np.float32]


def tone(seconds: float, *, db: float = -20.0, vibrato_cents: float = 0.0, sr: int = SR) -> F32:
    """A 440 Hz sine whose RMS is `db` dBFS, optionally with a 5 Hz vibrato of ±vibrato_cents."""
    t = np.arange(int(seconds * sr)) / sr
    freq = 440.0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return (10 ** (db / 20) * math.sqrt(2) * np.sin(phase)).astype(np.float32)


def clicks(seconds: float, *, jitter: float = 0.0, seed: int = 1) -> tuple[F32, int]:
    """10 ms decaying noise bursts at 120 BPM; `jitter`: Gaussian timing error with that share of
    the beat as its standard deviation (clipped to ±40% of the beat)."""
    rng = np.random.default_rng(seed)
    beat = 0.5
    times = 0.25 + beat * np.arange(int(seconds / beat))
    if jitter:
        times = times + np.clip(rng.normal(0, jitter * beat, len(times)), -0.4 * beat, 0.4 * beat)
    n = int(0.01 * SR)
    burst = 0.5 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.002 * SR))
    x = np.zeros(int(seconds * SR), np.float32)
    for at in times:
        i = int(at * SR)
        x[i : i + n] += burst[: len(x) - i].astype(np.float32)
    return x, len(times)


def wav_bytes(x: F32, sr: int = SR, width: int = 2, channels: int = 1) -> bytes:
    clipped = np.clip(np.repeat(x[:, None], channels, axis=1).reshape(-1), -1.0, 1.0)
    if width == 1:
        pcm = np.round(clipped * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        pcm = np.round(clipped * 32767).astype("<i2").tobytes()
    else:
        ints = np.round(clipped * (2 ** (8 * width - 1) - 1)).astype("<i4")
        pcm = ints.view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(sr)
        w.writeframes(pcm)
    return out.getvalue()


def float_wav_extensible(x: F32, sr: int = SR) -> bytes:
    """32-bit float in WAVE_FORMAT_EXTENSIBLE, which the wave module cannot write."""
    data = x.astype("<f4").tobytes()
    guid = struct.pack("<H", 3) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, sr, sr * 4, 4, 32, 22, 32, 4) + guid
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + len(data)) + b"WAVE" + chunks + data


def request_for(
    audio: bytes,
    names: tuple[str, ...] = ALL,
    duration: float = 0.0,
    fmt: Literal["wav", "flac", "mp3", "ogg", "m4a"] = "wav",
    url: str = "http://127.0.0.1:8787/r2/edgerag-originals/rec_1",
) -> AnalyzerRequest:
    return AnalyzerRequest(
        request_id="req_test",
        recording=RecordingRef(
            id="rec_1",
            url=url,
            content_type=f"audio/{fmt}",
            size_bytes=len(audio),
            sha256=hashlib.sha256(audio).hexdigest(),
            format=fmt,
            duration_s=duration or 1e9,  # 0: "as long as the audio is"
            sample_rate=SR,
            channels=1,
        ),
        dimensions=[Dimension(name=n, label=n.replace("_", " ")) for n in names],
    )


def run(audio: bytes, names: tuple[str, ...] = ALL, duration: float = 0.0) -> AnalyzerResponse:
    """analyze(), then the checks edgerag makes on an analyzer's answer."""
    response = analyze(request_for(audio, names, duration), audio)
    again = AnalyzerResponse.model_validate_json(response.model_dump_json())
    again.check_within(duration or 1e9)
    assert again == response
    return response


@cache
def measured(case: str) -> dict[str, float]:
    signals = {
        "steady": lambda: tone(6),
        "vibrato": lambda: tone(6, vibrato_cents=40),
        "clicks": lambda: clicks(20)[0],
        "jittered": lambda: clicks(20, jitter=0.15)[0],
        "-20 dBFS": lambda: tone(6, db=-20),
        "-40 dBFS": lambda: tone(6, db=-40),
        "crescendo": lambda: (
            tone(10, db=0) * 10 ** ((-50 + 40 * np.arange(10 * SR) / (10 * SR)) / 20)
        ).astype(np.float32),
        "noise": lambda: (0.1 * np.random.default_rng(0).standard_normal(6 * SR)).astype(
            np.float32
        ),
        "silence": lambda: np.zeros(6 * SR, np.float32),
    }
    response = run(wav_bytes(signals[case]()))
    return {s.name: s.value for s in response.dimensions if s.value is not None}


def test_a_steady_tone_is_steadier_than_vibrato() -> None:
    steady, vibrato = measured("steady"), measured("vibrato")
    assert steady["pitch_stability"] < 5
    assert vibrato["pitch_stability"] > 20
    scores = [math.exp(-m["pitch_stability"] / 25) for m in (steady, vibrato)]
    assert scores[0] > scores[1]


def test_clicks_at_120_bpm_with_and_without_jitter() -> None:
    exact, jittered = measured("clicks"), measured("jittered")
    assert exact["onset_density"] == pytest.approx(2.0, abs=0.2)
    assert jittered["onset_density"] == pytest.approx(2.0, abs=0.2)
    assert exact["tempo_stability"] > 0.9
    assert jittered["tempo_stability"] < 0.9
    assert exact["tempo_stability"] - jittered["tempo_stability"] > 0.1
    assert "pitch_stability" not in exact  # clicks have no pitch


def test_loudness_and_dynamic_range() -> None:
    assert measured("-20 dBFS")["loudness"] == pytest.approx(-20, abs=1.5)
    assert measured("-40 dBFS")["loudness"] == pytest.approx(-40, abs=1.5)
    assert measured("crescendo")["dynamic_range"] > 25
    assert measured("-20 dBFS")["dynamic_range"] < 3


def test_noise_has_no_pitch_and_silence_no_measurement() -> None:
    noise = measured("noise")
    assert "pitch_stability" not in noise
    assert noise["onset_density"] < 0.5
    assert measured("silence") == {}
    silent = run(wav_bytes(np.zeros(6 * SR, np.float32)), duration=6.0)
    assert silent.dimensions == []
    assert [len(s.dimensions) for s in silent.segments] == [0, 0]
    assert all(s.note.startswith("silent") for s in silent.segments)


def test_only_requested_dimensions_this_analyzer_knows() -> None:
    audio = wav_bytes(tone(3))
    response = run(audio, ("pitch_stability", "intonation", "loudness", "loudness"))
    assert [s.name for s in response.dimensions] == ["pitch_stability", "loudness"]
    assert {s.name for seg in response.segments for s in seg.dimensions} <= {
        "pitch_stability",
        "loudness",
    }
    assert response.analyzer.kind == "signal"
    assert response.analyzer.name == "edgerag-signal"
    nothing = run(audio, ())
    assert nothing.dimensions == [] and nothing.segments == []
    assert run(audio, ("intonation",)).dimensions == []
    for score in response.dimensions:
        assert 0 <= score.score <= 1 and 0.02 <= score.uncertainty <= 1
        assert score.unit and score.explanation


def test_segments_of_5_s_with_a_shorter_last_one() -> None:
    response = run(wav_bytes(tone(22)), ("loudness", "pitch_stability"), duration=22.0)
    spans = [(s.start_s, s.end_s) for s in response.segments]
    assert spans == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 22)]
    assert all(len(s.dimensions) == 2 for s in response.segments)
    assert segment_spans(20.5)[-1] == (15.0, 20.0)  # a 0.5 s tail is dropped
    long = segment_spans(3 * 3600.0)  # 10800 s / 500 → whole 22 s windows
    assert len(long) == 491 and long[0] == (0.0, 22.0) and long[-1][1] == 3 * 3600.0


def test_the_same_bytes_give_the_same_answer() -> None:
    audio = wav_bytes(clicks(12, jitter=0.1)[0] + tone(12, db=-30, vibrato_cents=20))
    assert run(audio).model_dump_json() == run(audio).model_dump_json()


def test_wav_encodings_decode_alike() -> None:
    x = tone(1, db=-12)
    for audio in (
        wav_bytes(x, width=1),
        wav_bytes(x, width=3),
        wav_bytes(x, width=4),
        wav_bytes(x, channels=2),
        float_wav_extensible(x),
    ):
        samples, sr = decode(audio)
        assert sr == SR and samples.dtype == np.float32 and len(samples) == len(x)
        assert np.max(np.abs(samples - x)) < 0.01


def test_corrupt_long_and_unsupported_audio_are_refused() -> None:
    def code(audio: bytes) -> str:
        with pytest.raises(AnalyzerError) as caught:
            decode(audio)
        return caught.value.code

    assert code(np.random.default_rng(3).bytes(4096)) == "undecodable"
    assert code(b"RIFF\x00\x00\x00\x00WAVEjunk") == "undecodable"
    assert code(b"") == "undecodable"
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + bytes(64)
    assert code(m4a) == "unsupported"
    over = wav_bytes(np.zeros(4000 * (30 * 60 + 1), np.float32), sr=4000, width=1)
    assert code(over) == "too_long"


def test_flac_and_ogg_through_soundfile() -> None:
    soundfile = pytest.importorskip("soundfile")
    x = tone(3, vibrato_cents=40)
    for fmt, subtype in (("FLAC", "PCM_16"), ("OGG", "VORBIS")):
        out = io.BytesIO()
        soundfile.write(out, x, SR, format=fmt, subtype=subtype)
        dims = run(out.getvalue()).dimensions
        values = {s.name: s.value for s in dims if s.value is not None}
        assert values["loudness"] == pytest.approx(-20, abs=1.5), fmt
        assert values["pitch_stability"] > 20, fmt


def test_a_minute_at_44_1_khz_is_cut_into_twelve_segments() -> None:
    # How long it takes is a benchmark's question, not a test's (docs/recordings.md).
    audio = wav_bytes(tone(60, vibrato_cents=20, sr=44100), sr=44100)
    response = analyze(request_for(audio), audio)
    assert len(response.segments) == 12
    assert all(s.end_s - s.start_s == pytest.approx(5.0) for s in response.segments)


# --- the HTTP side --------------------------------------------------------------------------

ROUTE = "/analyzer/v1/analyze"


def fetching(audio: bytes) -> Callable[[str], Awaitable[bytes]]:
    async def fetch(url: str) -> bytes:
        assert url.startswith("http://127.0.0.1:8787/r2/")
        return audio

    return fetch


async def test_handle_answers_the_contract() -> None:
    audio = wav_bytes(tone(7))
    body = request_for(audio, duration=7.0).model_dump_json().encode()
    status, headers, data = await handle("POST", ROUTE, {}, body, fetch=fetching(audio))
    assert status == 200 and headers["content-type"] == "application/json"
    response = AnalyzerResponse.model_validate_json(data)
    response.check_within(7.0)
    assert {s.name for s in response.dimensions} >= {"loudness", "pitch_stability"}


def error_code(reply: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, data = reply
    assert headers["content-type"] == "application/json"
    return status, json.loads(data)["error"]["code"]


async def test_handle_refuses_what_it_cannot_serve() -> None:
    audio = wav_bytes(tone(2))
    good = request_for(audio).model_dump_json().encode()
    fetch = fetching(audio)

    async def missing(url: str) -> bytes:
        raise RuntimeError("GET answered 404")

    async def never(url: str) -> bytes:
        raise AssertionError("no fetch for a format it cannot decode")

    wrong_sum = request_for(audio).model_copy(deep=True)
    wrong_sum.recording.sha256 = "0" * 64
    m4a = request_for(audio, fmt="m4a").model_dump_json().encode()
    cases = [
        (await handle("POST", ROUTE, {}, wrong_sum.model_dump_json().encode(), fetch=fetch), (422, "checksum_mismatch")),
        (await handle("POST", ROUTE, {}, b"{not json", fetch=fetch), (422, "invalid_request")),
        (await handle("POST", ROUTE, {}, b'{"recording": {}}', fetch=fetch), (422, "invalid_request")),
        (await handle("POST", ROUTE, {}, good, fetch=missing), (502, "fetch_failed")),
        (await handle("POST", ROUTE, {}, m4a, fetch=never), (422, "unsupported")),
        (await handle("POST", ROUTE, {}, good, fetch=fetching(b"RIFF....WAVEnope" * 4)), (422, "checksum_mismatch")),
        (await handle("GET", ROUTE, {}, b"", fetch=fetch), (405, "method_not_allowed")),
        (await handle("POST", "/analyzer/v2/analyze", {}, good, fetch=fetch), (404, "not_found")),
    ]  # fmt: skip
    for reply, expected in cases:
        assert error_code(reply) == expected
    junk = np.random.default_rng(5).bytes(2048)
    body = request_for(junk).model_dump_json().encode()
    reply = await handle("POST", ROUTE, {}, body, fetch=fetching(junk))
    assert error_code(reply) == (422, "undecodable")


async def test_the_default_fetch_over_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """fetch_recording against a one-route HTTP server on 127.0.0.1: 200 is the body, anything
    else and anything over the size cap is fetch_failed."""
    audio = wav_bytes(tone(2))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        found = line.split()[1] == "/rec"
        head = f"HTTP/1.1 {200 if found else 404} X\r\ncontent-length: {len(audio) if found else 0}"
        writer.write(f"{head}\r\nconnection: close\r\n\r\n".encode() + (audio if found else b""))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await fetch_recording(f"http://127.0.0.1:{port}/rec") == audio
        body = request_for(audio, url=f"http://127.0.0.1:{port}/gone").model_dump_json()
        assert error_code(await handle("POST", ROUTE, {}, body.encode())) == (502, "fetch_failed")
        body = request_for(audio, url=f"http://127.0.0.1:{port}/rec").model_dump_json()
        assert (await handle("POST", ROUTE, {}, body.encode()))[0] == 200
        monkeypatch.setattr(analyzer, "MAX_FETCH_BYTES", 1000)
        with pytest.raises(FetchFailed, match="over 1000 bytes"):
            await fetch_recording(f"http://127.0.0.1:{port}/rec")
    finally:
        server.close()
        await server.wait_closed()
