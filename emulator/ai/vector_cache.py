"""Embeddings the emulated AI already computed, so its stand-ins never run the model twice.

The embedding model is a pure function of (model, pooling, text), so a vector computed at ingest
is exactly the vector the stand-in reranker needs for the same passage later. The deployed code
is unaffected: it still sends the documented `{query, contexts: [{text}]}` to the reranker; only
the emulator behind that API remembers. (Workers AI's real bge-reranker is a cross-encoder that
never sees these vectors; the stand-in is cosine + BM25 — see `emulator.ai.reranker`.)

Keys are sha256(fingerprint, pooling, text): a different model or weights file never reuses a
vector. An in-memory LRU sits in front; with a `path` (the dev server's data directory) the
vectors also persist in SQLite, so a restarted server still reranks without re-embedding.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
MEMORY_VECTORS = 20_000  # ~30 MB of 384-d float32: a working set of several large documents


class VectorCache:
    """Thread-safe: the AI binding encodes in worker threads (asyncio.to_thread)."""

    def __init__(
        self, fingerprint: str, path: Path | None = None, *, capacity: int = MEMORY_VECTORS
    ) -> None:
        self._fingerprint = fingerprint
        self._capacity = capacity
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a lost tail only costs a re-embedding
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            self._conn = conn

    def key(self, pooling: str, text: str) -> bytes:
        raw = f"{self._fingerprint}\0{pooling}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(raw).digest()

    def get_many(self, keys: Sequence[bytes]) -> list[F32 | None]:
        found: dict[bytes, bytes] = {}
        with self._lock:
            for k in keys:
                if k in self._memory:
                    self._memory.move_to_end(k)
                    found[k] = self._memory[k]
            missing = [k for k in dict.fromkeys(keys) if k not in found]
            if missing and self._conn is not None:
                for start in range(0, len(missing), 500):  # under SQLite's parameter limit
                    part = missing[start : start + 500]
                    marks = ", ".join("?" * len(part))
                    rows = self._conn.execute(
                        f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part
                    ).fetchall()
                    for k, v in rows:
                        found[bytes(k)] = bytes(v)
                        self._remember(bytes(k), bytes(v))
        return [np.frombuffer(found[k], dtype=np.float32) if k in found else None for k in keys]

    def put_many(self, keys: Sequence[bytes], vectors: F32) -> None:
        blobs = [np.ascontiguousarray(v, dtype=np.float32).tobytes() for v in vectors]
        with self._lock:
            for k, b in zip(keys, blobs, strict=True):
                self._remember(k, b)
            if self._conn is not None:
                self._conn.execute("BEGIN")
                self._conn.executemany(
                    "INSERT OR IGNORE INTO vectors (key, vector) VALUES (?, ?)",
                    list(zip(keys, blobs, strict=True)),
                )
                self._conn.execute("COMMIT")

    def _remember(self, key: bytes, blob: bytes) -> None:
        self._memory[key] = blob
        self._memory.move_to_end(key)
        while len(self._memory) > self._capacity:
            self._memory.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
