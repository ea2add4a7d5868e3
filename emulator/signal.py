"""Signal measurements of a practice recording, for the local analyzer (emulator/analyzer.py).

Emulator only, never deployed: numpy on CPython. `decode` turns WAV/FLAC/OGG/MP3 bytes into
float32 mono samples; `extract` computes frame-level features once (400 ms levels, spectral-flux
onsets, a YIN f0 track); `summarise` turns the features of any time span into measurements, so
the whole recording and each segment are measured the same way. Each measurement says what the
waveform shows, nothing more: a dimension the signal cannot support is left out.

Levels are unweighted RMS relative to full scale (a full-scale sine reads -3 dBFS), not LUFS.
Uncertainty is a heuristic of how much evidence there is, 1/sqrt(n) clipped to [0.02, 1]:
n = non-silent windows / 4 (they overlap 4x) for loudness, a tenth of that for dynamic range
(the 10th percentile rests on a tenth of the windows), onsets + 1 for onset density,
inter-onset intervals for tempo stability, pitched frames / 4 (40 ms frames, 10 ms hop) for
pitch stability.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

DIMENSIONS = ("loudness", "dynamic_range", "onset_density", "tempo_stability", "pitch_stability")
MAX_SECONDS = 30 * 60
SILENCE_DBFS = -60.0
WINDOW_S, WINDOW_HOP_S = 0.4, 0.1  # short-term loudness
FRAME_HOP_S = 0.01  # onset and pitch frames
F0_MIN, F0_MAX = 50.0, 2000.0
YIN_THRESHOLD = 0.2  # cumulative-mean-normalised difference below which a frame is pitched
PITCH_MEDIAN_S = 0.3  # "held note" span of the local median
NOTE_CHANGE_CENTS = 100.0  # deviations beyond this are note changes, not unsteadiness
MIN_PITCHED_SHARE = 0.2
MIN_ONSETS_FOR_TEMPO = 8
ONSET_GAP_S = 0.05
FLUX_GAMMA = 1000.0  # log compression: components near -60 dBFS start to count
FLUX_DELTA = 0.02  # minimum height (mean nats per bin) of an onset above its local mean

UNSUPPORTED = "the local signal analyzer decodes WAV, FLAC, OGG and MP3; {} needs a tenant analyzer"


class AnalyzerError(Exception):
    """A recording the analyzer refuses; `code` goes into the error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- decoding -------------------------------------------------------------------------------


def decode(audio: bytes) -> tuple[F32, int]:
    """Float32 mono samples (channels averaged) and the sample rate."""
    if len(audio) < 12:
        raise AnalyzerError("undecodable", "the recording is empty or too short to be audio")
    if audio[4:8] == b"ftyp":
        raise AnalyzerError("unsupported", UNSUPPORTED.format("M4A"))
    if audio[:2] in (b"\xff\xf1", b"\xff\xf9"):
        raise AnalyzerError("unsupported", UNSUPPORTED.format("AAC"))
    if audio[:4] == b"\x1a\x45\xdf\xa3":
        raise AnalyzerError("unsupported", UNSUPPORTED.format("WebM"))
    decoded = _wav(audio) if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" else None
    samples, rate = decoded if decoded is not None else _soundfile(audio)
    if not 4000 <= rate <= 768_000:
        raise AnalyzerError("unsupported", f"a sample rate of {rate} Hz is outside 4-768 kHz")
    if samples.size == 0:
        raise AnalyzerError("undecodable", "the recording holds no audio samples")
    if not np.isfinite(samples).all():
        raise AnalyzerError("undecodable", "the recording holds non-finite samples")
    return samples, rate


def _too_long(frames: int, rate: int) -> AnalyzerError:
    return AnalyzerError(
        "too_long",
        f"the local signal analyzer reads at most {MAX_SECONDS // 60} minutes;"
        f" this recording is {frames / rate / 60:.1f}",
    )


def _wav(audio: bytes) -> tuple[F32, int] | None:
    """PCM 8/16/24/32-bit and float 32/64 WAV, plain or WAVE_FORMAT_EXTENSIBLE; None for other
    encodings (A-law, ADPCM...), which libsndfile gets to try."""
    fmt: bytes | None = None
    data: tuple[int, int] | None = None
    pos = 12
    while pos + 8 <= len(audio) and data is None:
        chunk, size = audio[pos : pos + 4], struct.unpack_from("<I", audio, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt = audio[body : body + size]
        elif chunk == b"data" and fmt is not None:
            # a streaming writer may leave the size 0 or past the end: read what is there
            end = len(audio) if size in (0, 0xFFFFFFFF) else min(body + size, len(audio))
            data = (body, end)
        pos = body + size + (size & 1)
    if fmt is None or data is None or len(fmt) < 16:
        raise AnalyzerError("undecodable", "the WAV file has no fmt or data chunk")
    tag, channels, rate, _, align, _ = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and len(fmt) >= 40:  # WAVE_FORMAT_EXTENSIBLE: the subformat GUID says
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if channels == 0 or rate == 0 or align == 0 or align % channels:
        raise AnalyzerError("undecodable", "the WAV fmt chunk is inconsistent")
    width = align // channels
    if not ((tag == 1 and width in (1, 2, 3, 4)) or (tag == 3 and width in (4, 8))):
        return None
    frames = (data[1] - data[0]) // align
    if frames > rate * MAX_SECONDS:
        raise _too_long(frames, rate)
    out = np.empty(frames, np.float32)
    step = 1 << 18
    for first in range(0, frames, step):
        count = min(step, frames - first)
        raw = np.frombuffer(audio, np.uint8, count * align, data[0] + first * align)
        block = _pcm(raw, tag, width).reshape(count, channels)
        out[first : first + count] = block[:, 0] if channels == 1 else block.mean(axis=1)
    return out, rate


def _pcm(raw: npt.NDArray[np.uint8], tag: int, width: int) -> F32:
    if tag == 3:
        return raw.view("<f4" if width == 4 else "<f8").astype(np.float32)
    if width == 1:
        return (raw.astype(np.float32) - 128.0) / 128.0
    if width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return (value / float(1 << 23)).astype(np.float32)
    ints = raw.view("<i2" if width == 2 else "<i4")
    return (ints / float(1 << (8 * width - 1))).astype(np.float32)


def _soundfile(audio: bytes) -> tuple[F32, int]:
    try:
        import soundfile
    except ImportError:
        raise AnalyzerError(
            "unsupported", "soundfile is not installed: only WAV can be decoded"
        ) from None
    parts: list[F32] = []
    try:
        with soundfile.SoundFile(io.BytesIO(audio)) as f:
            rate = int(f.samplerate)
            total = 0
            block: Any
            for block in f.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                total += len(block)
                if total > rate * MAX_SECONDS:
                    raise _too_long(total, rate)
                parts.append(block.mean(axis=1, dtype=np.float32))
    except AnalyzerError:
        raise
    except (RuntimeError, ValueError, TypeError, OSError, EOFError, MemoryError) as exc:
        raise AnalyzerError("undecodable", f"the audio could not be decoded: {exc}") from None
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return samples.astype(np.float32, copy=False), rate


# --- frame-level features -------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    duration: float
    win_start: F64  # start of each 400 ms window, s
    win_len: float
    win_db: F64  # its RMS level, dBFS
    onsets: F64  # onset times, s
    frame_t: F64  # centre of each pitch frame, s
    sounding: Bools  # the frame is above the silence gate
    f0: F64  # Hz, NaN where unpitched
    dev: F64  # cents from the local median, NaN where unpitched or a note change


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    unit: str
    score: float
    uncertainty: float
    explanation: str


def _db(mean_square: F64) -> F64:
    return 10.0 * np.log10(np.maximum(mean_square, 1e-20))


def short_term_levels(x: F32, rate: int) -> tuple[F64, float, F64]:
    """Window starts (s), window length (s), RMS level (dBFS) of 400 ms windows, 100 ms hop,
    each window's mean (a DC offset, which is no sound) removed."""
    hop = round(rate * WINDOW_HOP_S)
    n_blocks = len(x) // hop
    per_window = round(WINDOW_S / WINDOW_HOP_S)
    if n_blocks < per_window:  # shorter than one window: the whole signal is one
        level = _db(np.array([np.var(x, dtype=np.float64)]))
        return np.zeros(1), len(x) / rate, level
    sums, squares = np.empty(n_blocks), np.empty(n_blocks)
    for first in range(0, n_blocks, 256):
        last = min(first + 256, n_blocks)
        blocks = x[first * hop : last * hop].reshape(-1, hop).astype(np.float64)
        sums[first:last] = blocks.sum(axis=1)
        squares[first:last] = np.einsum("ij,ij->i", blocks, blocks)
    size = per_window * hop

    def windowed(values: F64) -> F64:
        csum = np.concatenate(([0.0], np.cumsum(values)))
        return (csum[per_window:] - csum[:-per_window]) / size

    variance = np.maximum(windowed(squares) - np.square(windowed(sums)), 0.0)
    starts = np.arange(len(variance), dtype=np.float64) * (hop / rate)
    return starts, size / rate, _db(variance)


def onset_times(x: F32, rate: int) -> F64:
    """Spectral-flux onsets: log-compressed STFT (46 ms, 10 ms hop), mean positive change per
    bin, peaks that are the maximum within ±30 ms and exceed the mean of [-100, +70] ms by
    FLUX_DELTA (or 4 robust deviations of the whole curve, if larger), at least 50 ms apart."""
    n_fft = 2 ** round(math.log2(rate * 0.046))
    hop = round(rate * FRAME_HOP_S)
    half = n_fft // 2
    count = (len(x) + 2 * half - n_fft) // hop + 1  # frames centred on 0, hop, 2 hop...
    window = np.hanning(n_fft).astype(np.float32)
    scale = np.float32(FLUX_GAMMA * 2.0 / window.sum())
    flux = np.empty(count)
    previous = np.zeros(half + 1, np.float32)
    for first in range(0, count, 512):
        # the samples of frames first.. (zero past both ends), without padding a copy of x
        n = min(512, count - first)
        lo, hi = first * hop - half, (first + n - 1) * hop + half
        chunk = np.zeros(hi - lo, np.float32)
        chunk[max(0, -lo) : min(hi, len(x)) - lo] = x[max(lo, 0) : hi]
        frames = sliding_window_view(chunk, n_fft)[::hop]
        spectrum = np.log1p(scale * np.abs(np.fft.rfft(frames * window)))
        rises = np.diff(spectrum, axis=0, prepend=previous[None, :])
        flux[first : first + len(spectrum)] = np.maximum(rises, 0.0).mean(axis=1)
        previous = spectrum[-1]
    reach, pre, post = 3, 10, 7
    local_max = flux >= sliding_window_view(
        np.pad(flux, reach, constant_values=-np.inf), 2 * reach + 1
    ).max(axis=1)
    csum = np.concatenate(([0.0], np.cumsum(flux)))
    index = np.arange(len(flux))
    before, after = np.maximum(index - pre, 0), np.minimum(index + post + 1, len(flux))
    local_mean = (csum[after] - csum[before]) / (after - before)
    spread = 1.4826 * float(np.median(np.abs(flux - np.median(flux))))
    delta = max(FLUX_DELTA, 4.0 * spread)
    peaks = np.flatnonzero(local_max & (flux >= local_mean + delta))
    kept: list[int] = []
    gap = math.ceil(ONSET_GAP_S * rate / hop - 1e-9)
    for peak in peaks.tolist():
        if not kept or peak - kept[-1] >= gap:
            kept.append(peak)
    times = np.array(kept, dtype=np.float64) * (hop / rate)
    # a frame reaching past the end sees the recording stop, which is no onset
    return times[times < (len(x) - half) / rate]


def pitch_track(x: F32, rate: int) -> tuple[F64, Bools, F64]:
    """YIN f0 every 10 ms: frame centres (s), whether each frame is above the silence gate, and
    f0 (Hz) where the normalised difference dips below YIN_THRESHOLD within 50-2000 Hz."""
    f_max = min(F0_MAX, rate / 4)
    tau_min, tau_max = max(2, int(rate // f_max)), math.ceil(rate / F0_MIN)
    width = tau_max  # integration window: one period of the lowest f0
    size = width + tau_max + 2
    hop = round(rate * FRAME_HOP_S)
    if len(x) < size:
        return np.zeros(0), np.zeros(0, np.bool_), np.zeros(0)
    frames = sliding_window_view(x, size)[::hop]
    n_fft = 1 << (size - 1).bit_length()
    lags = np.arange(tau_max + 2)
    f0 = np.full(len(frames), np.nan)
    sounding = np.zeros(len(frames), np.bool_)
    gate = 10.0 ** (SILENCE_DBFS / 10.0) * width
    for first in range(0, len(frames), 256):
        fr = frames[first : first + 256].astype(np.float64)
        fr -= fr.mean(axis=1, keepdims=True)  # a DC offset is neither pitch nor sound
        rows = np.arange(len(fr))
        head = np.fft.rfft(fr[:, :width], n_fft)
        acf = np.fft.irfft(np.conj(head) * np.fft.rfft(fr, n_fft), n_fft)[:, : tau_max + 2]
        csum = np.zeros((len(fr), size + 1))
        np.cumsum(np.square(fr), axis=1, out=csum[:, 1:])
        energy0 = csum[:, width]
        diff = np.maximum(energy0[:, None] + csum[:, lags + width] - csum[:, lags] - 2 * acf, 0.0)
        diff[:, 0] = 0.0
        running = np.cumsum(diff[:, 1:], axis=1)
        norm = np.ones_like(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            norm[:, 1:] = np.where(running > 0, diff[:, 1:] * lags[1:] / running, 1.0)
        mid = norm[:, tau_min : tau_max + 1]
        dips = (
            (mid < YIN_THRESHOLD)
            & (mid <= norm[:, tau_min - 1 : tau_max])
            & (mid <= norm[:, tau_min + 1 : tau_max + 2])
        )
        tau = np.argmax(dips, axis=1) + tau_min
        a, b, c = diff[rows, tau - 1], diff[rows, tau], diff[rows, tau + 1]
        curve = a - 2 * b + c
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(curve > 0, np.clip(0.5 * (a - c) / curve, -1, 1), 0.0)
        loud = energy0 >= gate
        voiced = dips.any(axis=1) & loud
        f0[first : first + len(fr)] = np.where(voiced, rate / (tau + shift), np.nan)
        sounding[first : first + len(fr)] = loud
    return (np.arange(len(frames)) * hop + size / 2) / rate, sounding, f0


def local_deviation(f0: F64, hop_s: float = FRAME_HOP_S) -> F64:
    """Cents of each pitched frame from the median of the pitched frames within ±150 ms; NaN for
    unpitched frames and for deviations past NOTE_CHANGE_CENTS (a note change)."""
    cents = 1200.0 * np.log2(f0 / 440.0)
    half = round(PITCH_MEDIAN_S / 2 / hop_s)
    dev = np.full(len(f0), np.nan)
    pitched = np.flatnonzero(np.isfinite(cents))
    if pitched.size == 0:
        return dev
    around = sliding_window_view(np.pad(cents, half, constant_values=np.nan), 2 * half + 1)
    for first in range(0, len(pitched), 65536):
        at = pitched[first : first + 65536]
        dev[at] = cents[at] - np.nanmedian(around[at], axis=1)
    dev[np.abs(dev) > NOTE_CHANGE_CENTS] = np.nan
    return dev


def extract(x: F32, rate: int) -> Features:
    win_start, win_len, win_db = short_term_levels(x, rate)
    frame_t, sounding, f0 = pitch_track(x, rate)
    return Features(
        duration=len(x) / rate,
        win_start=win_start,
        win_len=win_len,
        win_db=win_db,
        onsets=onset_times(x, rate),
        frame_t=frame_t,
        sounding=sounding,
        f0=f0,
        dev=local_deviation(f0, round(rate * FRAME_HOP_S) / rate),
    )


# --- measurements ---------------------------------------------------------------------------


def _uncertainty(evidence: float) -> float:
    return float(np.clip(1.0 / math.sqrt(max(evidence, 1e-9)), 0.02, 1.0))


def _clip(value: float) -> float:
    return float(np.clip(value, 0.0, 1.0))


def summarise(features: Features, start: float, end: float) -> dict[str, Measurement]:
    """The measurements of [start, end): nothing at all when no 400 ms window in it is above the
    silence gate; tempo and pitch only with enough onsets / pitched frames."""
    eps = 1e-6
    inside = (features.win_start >= start - eps) & (
        features.win_start + features.win_len <= end + eps
    )
    levels = features.win_db[inside]
    levels = levels[levels > SILENCE_DBFS]
    if levels.size == 0:
        return {}
    found: list[Measurement] = []
    n = int(levels.size)
    mean = float(np.mean(levels))
    found.append(
        Measurement(
            "loudness",
            mean,
            "dBFS",
            _clip((mean + 60.0) / 60.0),
            _uncertainty(n / 4),
            f"mean short-term RMS level of the {n} non-silent 400 ms windows",
        )
    )
    if n >= 5:
        spread = float(np.percentile(levels, 95) - np.percentile(levels, 10))
        found.append(
            Measurement(
                "dynamic_range",
                spread,
                "dB",
                _clip(spread / 30.0),
                _uncertainty(n / 40),
                f"95th minus 10th percentile level of the {n} non-silent 400 ms windows",
            )
        )
    onsets = features.onsets[(features.onsets >= start) & (features.onsets < end)]
    density = len(onsets) / (end - start)
    found.append(
        Measurement(
            "onset_density",
            density,
            "onsets/s",
            _clip(density / 8.0),
            _uncertainty(len(onsets) + 1),
            f"{len(onsets)} onsets (spectral-flux peaks) in {end - start:.1f} s",
        )
    )
    if len(onsets) >= MIN_ONSETS_FOR_TEMPO:
        ioi = np.diff(onsets)
        median = float(np.median(ioi))
        cv = 1.4826 * float(np.median(np.abs(ioi - median))) / median
        found.append(
            Measurement(
                "tempo_stability",
                1.0 - cv,
                "ratio",
                _clip(1.0 - cv),
                _uncertainty(len(ioi)),
                f"1 minus the robust spread (1.4826 MAD / median) of {len(ioi)} inter-onset"
                f" intervals (median {median * 1000:.0f} ms)",
            )
        )
    span = (features.frame_t >= start) & (features.frame_t < end)
    sounding = int(np.count_nonzero(features.sounding & span))
    pitched = int(np.count_nonzero(np.isfinite(features.f0) & span))
    dev = features.dev[span]
    dev = dev[np.isfinite(dev)]
    if sounding and pitched / sounding >= MIN_PITCHED_SHARE and dev.size >= 10:
        cents = float(np.sqrt(np.mean(np.square(dev))))
        found.append(
            Measurement(
                "pitch_stability",
                cents,
                "cents",
                float(math.exp(-cents / 25.0)),
                _uncertainty(pitched / 4),
                f"RMS deviation of f0 from its 300 ms local median over {pitched} pitched"
                f" frames ({100 * pitched / sounding:.0f}% of the sounding ones)",
            )
        )
    return {m.name: m for m in found if math.isfinite(m.value)}


def measure(x: F32, rate: int) -> dict[str, Measurement]:
    """The whole-signal measurements of float32 mono samples."""
    return summarise(extract(x, rate), 0.0, len(x) / rate)
