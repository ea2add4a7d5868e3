"""R2 emulator: object bodies as files, metadata in a sqlite sidecar.

Keys are never joined into paths: a body lives at `objects/<sha256(key)>`, so keys with
`/`, `..` or NUL cannot escape `root_dir`. Bodies are written to a temp file and moved into
place with os.replace, then the sidecar row is committed, so a reader sees the old or the
new object, never a torn one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kernel.bindings.limits import check_list_limit, check_r2_key, check_r2_metadata
from kernel.bindings.ports import BindingError, Blob, BlobInfo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key             TEXT PRIMARY KEY,
    file            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    etag            TEXT NOT NULL,
    content_type    TEXT,
    custom_metadata TEXT NOT NULL,
    uploaded        REAL NOT NULL
) WITHOUT ROWID"""
_COLUMNS = "key, size, etag, content_type, custom_metadata"


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(row: tuple[str, int, str, str | None, str]) -> BlobInfo:
    key, size, etag, content_type, custom = row
    return BlobInfo(
        key=key, size=size, etag=etag, content_type=content_type, custom_metadata=json.loads(custom)
    )


class EmulatedR2:
    """`kernel.bindings.ports.BlobStore` rooted at `root_dir` (created if missing)."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(self, root_dir: Path) -> None:
        self.root = Path(root_dir)
        self._objects = self.root / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            self.root / "metadata.sqlite", check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self._conn.close()

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo:
        check_r2_key(key)
        meta = check_r2_metadata(custom_metadata)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise BindingError("R2 put takes bytes")
        body = bytes(data)
        info = BlobInfo(
            key=key,
            size=len(body),
            etag=hashlib.md5(body, usedforsecurity=False).hexdigest(),  # R2's single-part etag
            content_type=content_type,
            custom_metadata=meta,
        )
        name = _file_name(key)
        async with self._lock:
            self._write_atomic(self._objects / name, body)
            self._conn.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, name, info.size, info.etag, content_type, json.dumps(meta), time.time()),
            )
        return info

    async def get(self, key: str) -> Blob | None:
        check_r2_key(key)
        async with self._lock:
            row = self._row(key)
            if row is None:
                return None
            try:
                data = (self._objects / _file_name(key)).read_bytes()
            except OSError as exc:
                raise BindingError(f"R2 object {key!r} is missing its body: {exc}") from exc
        return Blob(info=_info(row), data=data)

    async def get_range(self, key: str, offset: int, length: int) -> bytes | None:
        """Reads only the asked bytes from the body file (seek + read), never the whole body."""
        check_r2_key(key)
        if offset < 0 or length < 0:
            raise BindingError(
                f"R2 range needs offset >= 0 and length >= 0, got {offset}, {length}"
            )
        async with self._lock:  # the row and the body it names, as one object (see put)
            if self._row(key) is None:
                return None
            try:
                with (self._objects / _file_name(key)).open("rb") as fh:
                    fh.seek(offset)
                    return fh.read(length)
            except OSError as exc:
                raise BindingError(f"R2 object {key!r} is missing its body: {exc}") from exc

    async def head(self, key: str) -> BlobInfo | None:
        check_r2_key(key)
        async with self._lock:
            row = self._row(key)
        return None if row is None else _info(row)

    async def delete(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):  # a bare str is a Sequence too; R2 accepts one key
            keys = [keys]
        if len(keys) > 1000:
            raise BindingError("R2 delete takes at most 1000 keys per call")
        for key in keys:
            check_r2_key(key)
        async with self._lock:
            for key in keys:
                self._conn.execute("DELETE FROM objects WHERE key = ?", (key,))
                with contextlib.suppress(FileNotFoundError):
                    (self._objects / _file_name(key)).unlink()

    async def list(self, prefix: str = "", limit: int = 1000) -> list[BlobInfo]:
        check_list_limit(limit)
        async with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM objects WHERE substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
        return [_info(row) for row in rows]

    def _row(self, key: str) -> tuple[str, int, str, str | None, str] | None:
        row: tuple[str, int, str, str | None, str] | None = self._conn.execute(
            f"SELECT {_COLUMNS} FROM objects WHERE key = ?", (key,)
        ).fetchone()
        return row

    def _write_atomic(self, target: Path, body: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._objects, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
