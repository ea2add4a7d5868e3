"""Runs INSIDE Pyodide (edge tier, test_edge_audio.py): `ingest.audio.probe` with the vendored
mutagen wheel, over every fixture recording, through an in-memory range reader and through
`R2Bucket.get_range` on Miniflare's R2; plus a 50 MB recording synthesised on the fly (zeros
after a WAV header) to show only its head and tail are read.

The plan mounts the package workers/ingest/audio/ as `ingest.audio` and tests/fixtures/audio/
as the package `audio_fixtures` next to the `kernel` bundle.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path
from typing import Any


def _load_mutagen() -> dict[str, Any]:
    already = [m for m in sys.modules if m == "mutagen" or m.startswith("mutagen.")]
    before = len(sys.modules)
    t0 = time.perf_counter()
    import mutagen

    t1 = time.perf_counter()
    import mutagen.flac
    import mutagen.mp3
    import mutagen.mp4
    import mutagen.oggflac
    import mutagen.oggopus
    import mutagen.oggspeex
    import mutagen.oggvorbis
    import mutagen.wave

    t2 = time.perf_counter()
    return {
        "version": mutagen.version_string,
        "imported_before": already,
        "import_package_ms": round((t1 - t0) * 1000, 1),
        "import_all_parsers_ms": round((t2 - t0) * 1000, 1),
        "modules_added": len(sys.modules) - before,
        "file": mutagen.__file__,
    }


class _Counting:
    def __init__(self, data: bytes, size: int | None = None) -> None:
        self.data, self.size = data, len(data) if size is None else size
        self.calls = 0
        self.bytes = 0

    async def __call__(self, offset: int, length: int) -> bytes:
        self.calls += 1
        end = min(self.size, offset + length)
        self.bytes += max(0, end - offset)
        piece = self.data[offset:end]
        return piece + bytes(max(0, end - offset) - len(piece))  # zeros past the real bytes


def _info(info: Any) -> dict[str, Any]:
    return {
        "format": info.format,
        "codec": info.codec,
        "duration_s": info.duration_s,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "bitrate": info.bitrate,
    }


async def main(env: Any, ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": sys.platform}
    out["mutagen"] = _load_mutagen()

    import audio_fixtures

    from ingest.audio import probe
    from kernel.bindings.cloudflare import R2Bucket
    from kernel.runtime.errors import ValidationFailed

    here = Path(audio_fixtures.__file__).parent
    expected = json.loads((here / "expected.json").read_text())

    probes: dict[str, Any] = {}
    for name, want in expected.items():
        data = (here / name).read_bytes()
        reader = _Counting(data)
        t0 = time.perf_counter()
        try:
            info = await probe(reader, len(data), want["content_type"])
            probes[name] = {**_info(info), "reads": reader.calls, "bytes_read": reader.bytes}
        except ValidationFailed as exc:
            probes[name] = {"error": exc.code, "message": exc.message}
        probes[name]["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["probes"] = probes

    # Through the real R2 binding: put, then range reads only.
    blobs = R2Bucket(env.R2)
    via_r2: dict[str, Any] = {}
    for name in ("opus_mono_48000.ogg", "aac_stereo_44100_moov_last.m4a", "stereo_48000.flac"):
        want = expected[name]
        stored = await blobs.put(
            f"rec/{name}", (here / name).read_bytes(), content_type=want["content_type"]
        )
        ranges: list[tuple[int, int]] = []

        async def read(
            offset: int, length: int, key: str = f"rec/{name}", seen: list[Any] = ranges
        ) -> bytes:
            seen.append((offset, length))
            return await blobs.get_range(key, offset, length) or b""

        info = await probe(read, stored.size, want["content_type"])
        via_r2[name] = {**_info(info), "ranges": ranges}
    out["r2"] = via_r2
    out["r2_edges"] = {
        "middle": (await blobs.get_range("rec/stereo_48000.flac", 4, 4) or b"").hex(),
        "past_end": len(await blobs.get_range("rec/stereo_48000.flac", 36100, 1000) or b""),
        "beyond": await blobs.get_range("rec/stereo_48000.flac", 10**6, 10) == b"",
        "missing": await blobs.get_range("rec/nope", 0, 10) is None,
    }

    # 50 MB: a WAV header, then zeros nobody allocates.
    size = 50 * 1024 * 1024
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    header += b"data" + struct.pack("<I", size - 44)
    big = _Counting(header, size)
    info = await probe(big, size, "audio/wav")
    out["large_wav"] = {**_info(info), "reads": big.calls, "bytes_read": big.bytes}

    try:
        await probe(_Counting(b"%PDF-1.7\n" + b"\x00" * 500), 509, "audio/wav")
        out["pdf_as_wav"] = "accepted"
    except ValidationFailed as exc:
        out["pdf_as_wav"] = exc.code
    return out
