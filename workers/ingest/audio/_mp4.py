"""M4A (MP4): the top-level boxes are walked here (cheap headers), then mutagen parses moov.

Fragmented MP4 (browsers' MediaRecorder) has no length in moov: it is mvex/mehd when present,
else the end of the last fragment of the sound track (its tfdt base time + its trun sample
durations), looked for in the file's tail. Synchronous, over a SparseFile: any read may raise
NeedRange. mutagen's `mp4._atom` is semi-private: mutagen 1.48.1 is pinned
(requirements/runtime.txt); it is imported inside the functions, only when a probe runs.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

from ingest.audio._containers import Raw
from ingest.audio._errors import Broken
from ingest.audio._sparse import MIB, TAIL_BYTES, Source, SparseFile, peek

# Top-level boxes have 8- or 16-byte headers; at most this many are walked.
_MAX_TOP_BOXES = 64


def _top_boxes(f: SparseFile, size: int) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, name) of the top-level boxes, in file order."""
    pos = 0
    for _ in range(_MAX_TOP_BOXES):
        if pos + 8 > size:
            return
        header = peek(f, pos, 16)
        length, name = struct.unpack_from(">I4s", header)
        if length == 1:
            if len(header) < 16:
                raise Broken(f"the {_box_name(name)} box header is cut off")
            length = struct.unpack_from(">Q", header, 8)[0]
        elif length == 0:  # "extends to the end of the file"
            length = size - pos
        if length < 8:
            raise Broken(f"a {length}-byte {_box_name(name)} box at offset {pos}")
        yield pos, length, name
        pos += length


def parse_m4a(f: SparseFile, source: Source) -> Raw:
    from mutagen.mp4 import MP4Info
    from mutagen.mp4._atom import Atoms

    size = source.size
    moov_end = None
    for offset, box_len, name in _top_boxes(f, size):
        if offset + box_len > size:
            raise Broken(
                f"the {_box_name(name)} box declares {box_len} bytes but the file ends"
                f" {size - offset} bytes after its start (truncated or corrupt)"
            )
        if name == b"moov":
            moov_end = offset + box_len
        elif name == b"moof" and moov_end is not None:
            break  # fragmented: a moof+mdat pair per fragment follows, not walked (the last
            # one is read from the tail: _fragmented_length)
    if moov_end is None:
        raise Broken(f"no moov box in the first {_MAX_TOP_BOXES} top-level boxes")
    # mutagen walks every top-level box; stop its view at the end of moov (fragments follow).
    view = SparseFile(source, end=moov_end)
    atoms = Atoms(view)
    info = MP4Info(atoms, view)
    if not info.channels and not info.sample_rate:
        raise Broken("no audio track")
    length = float(info.length)
    moov = atoms[b"moov"]
    if length == 0 and any(child.name == b"mvex" for child in moov.children or ()):
        length = _fragmented_length(f, view, moov, size)
    return Raw(
        _mp4_codec(str(info.codec)),
        length,
        int(info.sample_rate),
        int(info.channels),
        int(info.bitrate) or None,
    )


def _box_name(name: bytes) -> str:
    return name.decode("ascii") if all(32 <= b < 127 for b in name) else f"0x{name.hex()}"


def _mp4_codec(codec: str) -> str:
    c = codec.lower()
    if c in ("mp4a.40.34", "mp4a.6b", "mp4a.69"):
        return "mp3"
    if c.startswith("mp4a"):
        return "aac"
    return {"ac-3": "ac3", "ec-3": "eac3", "opus": "opus", "flac": "flac"}.get(c, c or "unknown")


def _full_box(atom: Any, fileobj: Any) -> tuple[int, int, bytes]:
    """(version, flags, payload) of a full box, read with mutagen's Atom."""
    ok, data = atom.read(fileobj)
    if not ok or len(data) < 4:
        raise Broken(f"the {_box_name(atom.name)} box is cut off")
    return data[0], int.from_bytes(data[1:4], "big"), data[4:]


def _timescale_and_track(moov: Any, view: SparseFile) -> tuple[int, int, int]:
    """(movie timescale, sound track id, sound track timescale)."""
    version, _, mvhd = _full_box(moov[b"mvhd",], view)
    movie_scale = struct.unpack_from(">I", mvhd, 16 if version == 1 else 8)[0]
    for trak in moov.findall(b"trak"):
        _, _, hdlr = _full_box(trak[b"mdia", b"hdlr"], view)
        if hdlr[4:8] != b"soun":
            continue
        tk_version, _, tkhd = _full_box(trak[b"tkhd",], view)
        track_id = struct.unpack_from(">I", tkhd, 16 if tk_version == 1 else 8)[0]
        md_version, _, mdhd = _full_box(trak[b"mdia", b"mdhd"], view)
        track_scale = struct.unpack_from(">I", mdhd, 16 if md_version == 1 else 8)[0]
        return movie_scale, track_id, track_scale
    raise Broken("no audio track")


def _fragmented_length(f: SparseFile, view: SparseFile, moov: Any, size: int) -> float:
    """A fragmented MP4's length: mvex/mehd when present, else where the last fragment of the
    sound track ends (its tfdt base time + its trun sample durations)."""
    movie_scale, track_id, track_scale = _timescale_and_track(moov, view)
    default_duration = 0
    for child in moov[b"mvex",].children or ():
        if child.name == b"mehd":
            version, _, body = _full_box(child, view)
            duration = struct.unpack_from(">Q" if version == 1 else ">I", body)[0]
            if duration and movie_scale:
                return float(duration / movie_scale)
        elif child.name == b"trex":
            _, _, body = _full_box(child, view)
            trex_track, _, trex_duration = struct.unpack_from(">III", body)
            if trex_track == track_id:
                default_duration = trex_duration
    if not track_scale:
        raise Broken("the sound track's timescale is 0")
    for span in (TAIL_BYTES, 1 * MIB, 4 * MIB):
        start = max(0, size - span)
        f.seek(start)
        end_time = _last_fragment_end(f.read(size - start), track_id, default_duration)
        if end_time is not None:
            return end_time / track_scale
        if start == 0:
            break
    raise Broken("a fragmented MP4 whose last fragment has no tfdt box, so the length is unknown")


def _last_fragment_end(data: bytes, track_id: int, default_duration: int) -> int | None:
    from mutagen.mp4._atom import Atom, AtomError

    at = len(data)
    while (at := data.rfind(b"moof", 0, at)) >= 4:
        blob = io.BytesIO(data[at - 4 :])
        try:
            moof = Atom(blob)
        except AtomError:
            continue
        after = data[at - 4 + moof.length : at + 12 + moof.length]  # the fragment's mdat
        if after[4:8] == b"mdat":
            mdat_len = struct.unpack_from(">I", after)[0]
            if mdat_len == 1 and len(after) >= 16:
                mdat_len = struct.unpack_from(">Q", after, 8)[0]
            if at - 4 + moof.length + mdat_len > len(data):
                raise Broken("the last fragment's mdat box runs past the end of the file")
        for traf in moof.findall(b"traf"):
            try:
                end = _traf_end(traf, blob, track_id, default_duration)
            except (Broken, struct.error):  # "moof" inside sample data, not a box
                break
            if end is not None:
                return end
    return None


def _traf_end(traf: Any, blob: io.BytesIO, track_id: int, default_duration: int) -> int | None:
    base: int | None = None
    total = 0
    duration = default_duration
    for child in traf.children or ():
        version, flags, body = _full_box(child, blob)
        if child.name == b"tfhd":
            if struct.unpack_from(">I", body)[0] != track_id:
                return None
            pos = 4 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
            if flags & 0x08:
                duration = struct.unpack_from(">I", body, pos)[0]
        elif child.name == b"tfdt":
            base = struct.unpack_from(">Q" if version == 1 else ">I", body)[0]
        elif child.name == b"trun":
            count = struct.unpack_from(">I", body)[0]
            pos = 4 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
            if not flags & 0x100:
                total += count * duration
                continue
            stride = 4 * bin(flags & 0xF00).count("1")
            if pos + count * stride > len(body):
                raise Broken("a trun box is cut off")
            total += sum(struct.unpack_from(">I", body, pos + i * stride)[0] for i in range(count))
    return None if base is None else base + total
