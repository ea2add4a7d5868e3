"""The sparse file mutagen reads: the fetched parts of an object, and the fetch budget.

mutagen is synchronous and Pyodide cannot run a nested event loop, so mutagen reads a *sparse
file* (`SparseFile`): the object's head and tail, fetched up front through the async range
reader, and nothing else. When mutagen reads outside the fetched bytes the file raises
`NeedRange`; `probe` fetches that range (at least MIN_FETCH at a time, in BLOCK-aligned
blocks) and runs the parser again from the start. At most MAX_FETCH_BYTES in MAX_FETCHES
fetches, then the recording is refused as unreadable (headers that need more are broken, or a
layout we do not support).
"""

from __future__ import annotations

import asyncio
import errno
import io
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ingest.audio._errors import unreadable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Reader = Callable[[int, int], Awaitable[bytes]]

KIB = 1024
MIB = 1024 * KIB
BLOCK = 64 * KIB  # cache granularity: fetched ranges start and end on these boundaries
HEAD_BYTES = 256 * KIB  # fetched before parsing ...
TAIL_BYTES = 256 * KIB  # ... (ID3v1/APE tags, Ogg's last page, moov at the end)
MIN_FETCH = 256 * KIB  # a miss fetches at least this much (headers are read in small steps)
MAX_FETCH_BYTES = 8 * MIB
MAX_FETCHES = 32


class NeedRange(BaseException):
    """A read outside the fetched bytes. A BaseException so that no `except Exception` in
    mutagen (there are a few, e.g. around MP4 tag parsing) can swallow it."""

    def __init__(self, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self.offset, self.length = offset, length


class Source:
    """The object's bytes fetched so far, in BLOCK-aligned blocks, and the fetch budget."""

    def __init__(self, read: Reader, size: int, fmt: str) -> None:
        self._read, self.size, self._fmt = read, size, fmt
        self._blocks: dict[int, bytes] = {}
        self.fetched_bytes = 0
        self.fetches = 0

    async def prefetch(self) -> None:
        if self.size <= HEAD_BYTES + TAIL_BYTES + BLOCK:
            await self.fetch(0, self.size)
            return
        tail = (self.size - TAIL_BYTES) // BLOCK * BLOCK
        await asyncio.gather(
            self._fetch_run(0, HEAD_BYTES // BLOCK), self._fetch_run(tail // BLOCK, self._nblocks)
        )

    @property
    def _nblocks(self) -> int:
        return -(-self.size // BLOCK)

    async def fetch(self, offset: int, length: int) -> None:
        """Fetch the missing blocks of [offset, offset + length), widened to MIN_FETCH."""
        first = offset // BLOCK
        last = min(self._nblocks, -(-(offset + length) // BLOCK))  # exclusive
        while last - first < MIN_FETCH // BLOCK and last < self._nblocks:
            if last in self._blocks:
                break
            last += 1
        i = first
        while i < last:
            if i in self._blocks:
                i += 1
                continue
            j = i
            while j < last and j not in self._blocks:
                j += 1
            await self._fetch_run(i, j)
            i = j

    async def _fetch_run(self, first: int, last: int) -> None:
        start, end = first * BLOCK, min(self.size, last * BLOCK)
        if start >= end:
            return
        if self.fetches >= MAX_FETCHES or self.fetched_bytes + (end - start) > MAX_FETCH_BYTES:
            hint = {
                "ogg": " (a multiplexed Ogg file?)",
                "m4a": " (a fragmented MP4 with many fragments?)",
            }
            raise unreadable(
                self._fmt,
                f"reading them needs more than {MAX_FETCH_BYTES // MIB} MiB of the file"
                f" in {MAX_FETCHES} reads{hint.get(self._fmt, '')}",
            )
        self.fetches += 1
        self.fetched_bytes += end - start
        data = bytes(await self._read(start, end - start))
        if len(data) < end - start:
            raise unreadable(
                self._fmt,
                f"the stored file ended at byte {start + len(data)}, before its size"
                f" ({self.size} bytes)",
            )
        for i in range(first, last):
            lo = (i - first) * BLOCK
            self._blocks[i] = data[lo : lo + BLOCK]

    def get(self, start: int, end: int) -> bytes:
        """Bytes [start, end) (end <= size), or NeedRange for the first missing part."""
        if start >= end:
            return b""
        first, last = start // BLOCK, (end - 1) // BLOCK
        for i in range(first, last + 1):
            if i not in self._blocks:
                missing = max(start, i * BLOCK)
                raise NeedRange(missing, end - missing)
        if first == last:
            return self._blocks[first][start - first * BLOCK : end - first * BLOCK]
        parts = [self._blocks[i] for i in range(first, last + 1)]
        return b"".join(parts)[start - first * BLOCK : end - first * BLOCK]


class SparseFile(io.RawIOBase):
    """A read-only, seekable file over a Source, optionally cut at `end` (a virtual size)."""

    def __init__(self, source: Source, end: int | None = None) -> None:
        super().__init__()
        self._src = source
        self._end = source.size if end is None else min(end, source.size)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._end + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise OSError(errno.EINVAL, "seek before the start of the file")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._end if size is None or size < 0 else min(self._end, self._pos + size)
        data = self._src.get(self._pos, end) if end > self._pos else b""
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def peek(f: SparseFile, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)
