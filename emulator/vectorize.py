"""Vectorize emulator: exact cosine search over numpy matrices, persisted in sqlite.

Per namespace we keep a contiguous float32 matrix of *unit* vectors, so a query is one
mat-vec product plus argpartition. Metadata filters are evaluated vectorised over typed
per-field columns (numbers, booleans, string ranks) built lazily and dropped on mutation;
evaluated masks are cached per filter until the namespace changes.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.bindings.limits import (
    FilterClause,
    check_dimensions,
    check_top_k,
    check_vector_values,
    check_vectors,
    compact_json,
    normalize_filter,
    truncate_utf8,
)
from kernel.bindings.ports import (
    BindingError,
    MetadataValue,
    Vector,
    VectorFilter,
    VectorMatch,
)

F32 = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
_MASK_CACHE_SIZE = 128
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    id        TEXT PRIMARY KEY,
    namespace TEXT,
    vec       BLOB NOT NULL,
    metadata  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _scores(matrix: F32, query: F32) -> F32:
    """matrix @ query without BLAS: numpy's own single-threaded SIMD loop.

    On this 2-core machine OpenBLAS's threaded sgemv is no faster for one query vector and
    its spinning worker threads make the tail slow under load (100k × 384: p95 24 ms vs 7 ms
    here); the embedding model pins BLAS to one thread anyway once it loads.
    """
    return np.einsum("ij,j->i", matrix, query)


def _unit(values: npt.ArrayLike) -> F32:
    arr = np.asarray(values, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return (arr / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


class _Column:
    """One metadata field of a namespace, split by type so comparisons stay vectorised."""

    def __init__(self, values: list[Any]) -> None:
        n = len(values)
        self.present = np.zeros(n, dtype=np.bool_)
        self.num = np.full(n, np.nan, dtype=np.float64)
        self.boolean = np.full(n, -1, dtype=np.int8)
        strings: dict[int, str] = {}
        for i, v in enumerate(values):
            if v is None:
                continue
            self.present[i] = True
            if isinstance(v, bool):
                self.boolean[i] = int(v)
            elif isinstance(v, int | float):
                self.num[i] = v
            elif isinstance(v, str):
                strings[i] = truncate_utf8(v)  # Vectorize indexes only the first 64 bytes
        # Strings become ranks in sorted order: $eq is rank ==, ranges are rank intervals.
        # Python str order is code-point order, which equals UTF-8 byte order.
        self.sorted_strings = sorted(set(strings.values()))
        rank = {s: r for r, s in enumerate(self.sorted_strings)}
        self.str_rank = np.full(n, -1, dtype=np.int64)
        if strings:
            idx = np.fromiter(strings.keys(), dtype=np.int64, count=len(strings))
            self.str_rank[idx] = [rank[s] for s in strings.values()]

    def eq(self, value: Any) -> Mask:
        if value is None:
            return ~self.present
        if isinstance(value, bool):
            return self.boolean == int(value)
        if isinstance(value, int | float):
            return self.num == value
        pos = bisect.bisect_left(self.sorted_strings, value)
        if pos < len(self.sorted_strings) and self.sorted_strings[pos] == value:
            return self.str_rank == pos
        return np.zeros(len(self.present), dtype=np.bool_)

    def compare(self, op: str, value: Any) -> Mask:
        if isinstance(value, int | float):
            with np.errstate(invalid="ignore"):  # NaN (missing / not a number) never matches
                if op == "$lt":
                    return self.num < value
                if op == "$lte":
                    return self.num <= value
                if op == "$gt":
                    return self.num > value
                return self.num >= value
        strings, rank = self.sorted_strings, self.str_rank
        if op == "$lt":
            return (rank >= 0) & (rank < bisect.bisect_left(strings, value))
        if op == "$lte":
            return (rank >= 0) & (rank < bisect.bisect_right(strings, value))
        if op == "$gt":
            return rank >= bisect.bisect_right(strings, value)
        return rank >= bisect.bisect_left(strings, value)

    def evaluate(self, op: str, operand: Any) -> Mask:
        if op == "$eq":
            return self.eq(operand)
        if op == "$ne":
            return ~self.eq(operand)
        if op in {"$in", "$nin"}:
            hit = np.zeros(len(self.present), dtype=np.bool_)
            for value in operand:
                hit |= self.eq(value)
            return hit if op == "$in" else ~hit
        return self.compare(op, operand)


class _Namespace:
    """Vectors of one namespace: unit-vector matrix rows, ids and metadata, same order."""

    def __init__(self, dimensions: int) -> None:
        self.matrix: F32 = np.empty((16, dimensions), dtype=np.float32)
        self.ids: list[str] = []
        self.metadata: list[dict[str, MetadataValue]] = []
        self.row: dict[str, int] = {}
        self._columns: dict[str, _Column] = {}
        self._masks: dict[str, Mask] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def _changed(self) -> None:
        self._columns.clear()
        self._masks.clear()

    def put(self, ids: list[str], units: F32, metadata: list[dict[str, MetadataValue]]) -> None:
        needed = len(self.ids) + len(ids)
        if needed > len(self.matrix):
            grown = np.empty((max(needed, 2 * len(self.matrix)), self.matrix.shape[1]), np.float32)
            grown[: len(self.ids)] = self.matrix[: len(self.ids)]
            self.matrix = grown
        for vid, unit, meta in zip(ids, units, metadata, strict=True):
            i = self.row.get(vid)
            if i is None:
                i = len(self.ids)
                self.row[vid] = i
                self.ids.append(vid)
                self.metadata.append(meta)
            else:
                self.metadata[i] = meta
            self.matrix[i] = unit
        self._changed()

    def remove(self, vid: str) -> bool:
        i = self.row.pop(vid, None)
        if i is None:
            return False
        last = len(self.ids) - 1
        if i != last:  # swap-remove keeps the matrix contiguous
            moved = self.ids[last]
            self.matrix[i] = self.matrix[last]
            self.ids[i] = moved
            self.metadata[i] = self.metadata[last]
            self.row[moved] = i
        self.ids.pop()
        self.metadata.pop()
        self._changed()
        return True

    def mask(self, key: str, clauses: dict[str, list[FilterClause]]) -> Mask:
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        result = np.ones(len(self.ids), dtype=np.bool_)
        for name, ops in clauses.items():
            column = self._columns.get(name)
            if column is None:
                column = _Column([m.get(name) for m in self.metadata])
                self._columns[name] = column
            for op, operand in ops:
                result &= column.evaluate(op, operand)
        if len(self._masks) >= _MASK_CACHE_SIZE:
            self._masks.pop(next(iter(self._masks)))
        self._masks[key] = result
        return result

    def top(self, query: F32, k: int, mask: Mask | None) -> list[tuple[float, str, int]]:
        n = len(self.ids)
        if n == 0:
            return []
        rows: npt.NDArray[np.int64] | None = None
        if mask is None:
            scores = _scores(self.matrix[:n], query)
        else:
            rows = np.flatnonzero(mask)
            if rows.size == 0:
                return []
            if rows.size * 4 < n:  # selective filter: scoring only the survivors is cheaper
                scores = _scores(self.matrix[rows], query)
            else:
                scores = np.where(mask, _scores(self.matrix[:n], query), np.float32(-np.inf))
                rows = None
        count = scores.size if rows is not None else int(mask.sum()) if mask is not None else n
        k = min(k, count)
        best = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
        picked = best if rows is None else rows[best]
        return [
            (float(s), self.ids[int(i)], int(i))
            for s, i in zip(scores[best], picked, strict=True)
            if np.isfinite(s)
        ]


class EmulatedVectorize:
    """`kernel.bindings.ports.VectorIndex`; cosine metric, exact search. Ids are global to the index."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(
        self, path: str | os.PathLike[str] | None, *, dimensions: int, metric: str = "cosine"
    ) -> None:
        check_dimensions(dimensions)
        if metric != "cosine":
            raise ValueError(f"only the cosine metric is emulated, not {metric!r}")
        self.dimensions = dimensions
        self.metric = metric
        target = ":memory:" if path is None else os.fspath(path)
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        if target != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._check_config()
        self._spaces: dict[str | None, _Namespace] = {}
        self._namespace_of: dict[str, str | None] = {}
        self._load()
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self._conn.close()

    def _check_config(self) -> None:
        row = self._conn.execute("SELECT value FROM index_config WHERE key='dimensions'").fetchone()
        if row is None:
            self._conn.execute(
                "INSERT INTO index_config VALUES ('dimensions', ?)", (str(self.dimensions),)
            )
        elif int(row[0]) != self.dimensions:
            raise BindingError(
                f"index was created with {row[0]} dimensions, opened with {self.dimensions}"
            )

    def _load(self) -> None:
        grouped: dict[str | None, tuple[list[str], list[bytes], list[dict[str, Any]]]] = {}
        for vid, ns, blob, meta in self._conn.execute(
            "SELECT id, namespace, vec, metadata FROM vectors"
        ):
            ids, blobs, metas = grouped.setdefault(ns, ([], [], []))
            ids.append(vid)
            blobs.append(blob)
            metas.append(json.loads(meta))
        for ns, (ids, blobs, metas) in grouped.items():
            raw = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, self.dimensions)
            self._space(ns).put(ids, _unit(raw), metas)
            self._namespace_of.update(dict.fromkeys(ids, ns))

    def _space(self, namespace: str | None) -> _Namespace:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = _Namespace(self.dimensions)
        return space

    # --- VectorIndex port -------------------------------------------------------------------
    async def upsert(self, vectors: Sequence[Vector]) -> int:
        check_vectors(vectors, self.dimensions)
        latest = {v.id: v for v in vectors}  # the last write of an id in one call wins
        batch = list(latest.values())
        raw = np.asarray([v.values for v in batch], dtype=np.float32).reshape(-1, self.dimensions)
        async with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                    [
                        (v.id, v.namespace, raw[i].tobytes(), json.dumps(dict(v.metadata)))
                        for i, v in enumerate(batch)
                    ],
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise BindingError(f"Vectorize upsert failed: {exc}") from exc
            units = _unit(raw)
            by_space: dict[str | None, list[int]] = {}
            for i, v in enumerate(batch):
                previous = self._namespace_of.get(v.id, v.namespace)
                if previous != v.namespace:  # an id moving namespaces leaves the old one
                    self._spaces[previous].remove(v.id)
                self._namespace_of[v.id] = v.namespace
                by_space.setdefault(v.namespace, []).append(i)
            for ns, rows in by_space.items():
                ids = [batch[i].id for i in rows]
                metas = [dict(batch[i].metadata) for i in rows]
                self._space(ns).put(ids, units[rows], metas)
        return len(vectors)

    async def query(
        self,
        vector: Sequence[float],
        *,
        top_k: int = 5,
        namespace: str | None = None,
        filter: VectorFilter | None = None,
        return_metadata: bool = False,
    ) -> list[VectorMatch]:
        check_top_k(top_k, return_metadata)
        check_vector_values(vector, self.dimensions)
        clauses = normalize_filter(filter) if filter is not None else None
        key = compact_json(clauses) if clauses is not None else ""
        query = _unit(vector)
        async with self._lock:
            # No namespace means the whole index; a namespace confines the search to it.
            spaces = (
                list(self._spaces.values())
                if namespace is None
                else [s for s in [self._spaces.get(namespace)] if s is not None]
            )
            found: list[tuple[float, str, _Namespace, int]] = []
            for space in spaces:
                mask = space.mask(key, clauses) if clauses is not None else None
                found += [(s, vid, space, i) for s, vid, i in space.top(query, top_k, mask)]
            found.sort(key=lambda hit: (-hit[0], hit[1]))
            return [
                VectorMatch(
                    id=vid,
                    score=score,
                    metadata=dict(space.metadata[i]) if return_metadata else None,
                )
                for score, vid, space, i in found[:top_k]
            ]

    async def get_by_ids(self, ids: Sequence[str]) -> list[Vector]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        async with self._lock:
            marks = ",".join("?" * len(wanted))
            rows = {
                r[0]: r
                for r in self._conn.execute(
                    f"SELECT id, namespace, vec, metadata FROM vectors WHERE id IN ({marks})",
                    wanted,
                )
            }
        return [
            Vector(
                id=vid,
                values=np.frombuffer(rows[vid][2], dtype=np.float32).tolist(),
                namespace=rows[vid][1],
                metadata=json.loads(rows[vid][3]),
            )
            for vid in wanted
            if vid in rows
        ]

    async def delete_by_ids(self, ids: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        async with self._lock:
            self._conn.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in wanted])
            for vid in wanted:
                if vid in self._namespace_of:
                    self._spaces[self._namespace_of.pop(vid)].remove(vid)
        return len(wanted)
