"""Workers KV emulator: one sqlite table with expirations and KV's limits."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import Any

from kernel.bindings.limits import check_kv_key, check_kv_put, check_list_limit
from kernel.bindings.ports import BindingError, KvListing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at REAL,
    metadata   TEXT
) WITHOUT ROWID"""


def _encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise BindingError(f"KV list failed: invalid cursor {cursor!r}") from exc


class EmulatedKV:
    """`kernel.bindings.ports.KeyValue` on sqlite. `clock` is injectable so tests can expire keys."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(
        self, path: str | os.PathLike[str] | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        target = ":memory:" if path is None else os.fspath(path)
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        if target != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)
        self._clock = clock
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self._conn.close()

    async def get(self, key: str) -> str | None:
        check_kv_key(key)
        async with self._lock:
            row = self._conn.execute(
                "SELECT value FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (key, self._clock()),
            ).fetchone()
        return None if row is None else str(row[0])

    async def put(
        self,
        key: str,
        value: str,
        *,
        ttl_seconds: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        encoded_meta = check_kv_put(key, value, ttl_seconds, metadata)
        expires_at = None if ttl_seconds is None else self._clock() + ttl_seconds
        async with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires_at, metadata) VALUES (?, ?, ?, ?)",
                (key, value, expires_at, encoded_meta),
            )

    async def delete(self, key: str) -> None:
        check_kv_key(key)
        async with self._lock:
            self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def list(
        self, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> KvListing:
        check_list_limit(limit)
        after = _decode_cursor(cursor) if cursor else None
        # Range scan on the primary key: prefix <= key < prefix + U+10FFFF covers the prefix.
        sql = (
            "SELECT key FROM kv WHERE key >= ? AND key < ? AND substr(key, 1, ?) = ?"
            " AND (expires_at IS NULL OR expires_at > ?)"
        )
        args: list[Any] = [prefix, prefix + "\U0010ffff", len(prefix), prefix, self._clock()]
        if after is not None:
            sql += " AND key > ?"
            args.append(after)
        sql += " ORDER BY key LIMIT ?"
        args.append(limit + 1)
        async with self._lock:
            keys = [str(row[0]) for row in self._conn.execute(sql, args)]
            self._purge_expired()
        if len(keys) > limit:
            keys = keys[:limit]
            return KvListing(keys=keys, cursor=_encode_cursor(keys[-1]))
        return KvListing(keys=keys, cursor=None)

    def _purge_expired(self) -> None:
        # Housekeeping only: expired keys are already invisible to every read.
        self._conn.execute(
            "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),)
        )
