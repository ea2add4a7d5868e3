"""Cloudflare adapters: the binding ports over the JS bindings in `self.env`.

Each adapter takes a binding as the Python Workers SDK exposes it (a `_BindingWrapper`):
arguments are converted to JS for us (dicts become objects, None becomes null, bytes become
Uint8Array; tuples are refused) and plain JS results come back as `JsDict`/lists. Class
instances nested inside results (R2 objects in a listing) may still be raw JsProxy objects,
so every read goes through `_field`/`_plain`, which accept both.

Limits are checked here, before the binding is called, with the same functions the emulator
uses. Pure Python only: this runs in Pyodide (no numpy, threads or files).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kernel.limits import (
    check_ai_inputs,
    check_d1_statement,
    check_kv_key,
    check_kv_put,
    check_list_limit,
    check_r2_key,
    check_r2_metadata,
    check_top_k,
    check_vector_values,
    check_vectors,
    normalize_filter,
)
from kernel.ports import (
    BindingError,
    BindingLimitError,
    Blob,
    BlobInfo,
    KvListing,
    QueryResult,
    SqlValue,
    Statement,
    Vector,
    VectorFilter,
    VectorMatch,
)

# Substrings of platform error messages that mean "a limit was hit", not "bad request".
_LIMIT_MARKERS = (
    "too big",
    "toobig",
    "too long",
    "too many sql variables",
    "cpu time",
    "exceeds",
    "too large",
)


@contextmanager
def _boundary(what: str) -> Iterator[None]:
    """Translate JS exceptions (pyodide.ffi.JsException) into the port's errors."""
    try:
        yield
    except BindingError:
        raise
    except Exception as exc:
        message = f"{what}: {exc}"
        lowered = message.lower()
        if any(marker in lowered for marker in _LIMIT_MARKERS):
            raise BindingLimitError(message) from exc
        raise BindingError(message) from exc


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """Read `name` from a JsDict/dict or from a raw JsProxy (attribute access)."""
    if obj is None:
        return default
    value = obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)
    return default if value is None else value


def _plain(value: Any) -> Any:
    """A JsProxy (object, array) as Python; Python values unchanged."""
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    to_bytes = getattr(value, "to_bytes", None)  # JsProxy of ArrayBuffer / Uint8Array
    if callable(to_bytes):
        return bytes(to_bytes())
    raise BindingError(f"expected binary data from the binding, got {type(value).__name__}")


# --- D1 ------------------------------------------------------------------------------------
def _row(row: Any) -> dict[str, Any]:
    # D1 returns BLOB columns as arrays of byte values; SQLite has no array type, so a list
    # can only be a blob.
    return {str(k): bytes(v) if isinstance(v, list) else v for k, v in dict(_plain(row)).items()}


def _query_result(res: Any) -> QueryResult:
    meta = _field(res, "meta", {})
    last = _field(meta, "last_row_id")
    return QueryResult(
        rows=[_row(r) for r in _field(res, "results", [])],
        changes=int(_field(meta, "changes", 0)),
        last_row_id=None if last is None else int(last),
    )


class D1Database:
    """`kernel.ports.Database` over a D1 binding (`self.env.DB`)."""

    def __init__(self, binding: Any) -> None:
        self._db = binding

    def _prepare(self, sql: str, params: Sequence[SqlValue]) -> Any:
        stmt = self._db.prepare(sql)
        return stmt.bind(*params) if params else stmt

    async def execute(self, sql: str, params: Sequence[SqlValue] = ()) -> QueryResult:
        check_d1_statement(sql, params)
        with _boundary("D1 query failed"):
            res = await self._prepare(sql, params).all()
        return _query_result(res)

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]:
        for stmt in statements:
            check_d1_statement(stmt.sql, stmt.params)
        if not statements:
            return []
        with _boundary("D1 batch failed"):
            prepared = [self._prepare(s.sql, s.params) for s in statements]
            results = await self._db.batch(prepared)
        return [_query_result(r) for r in results]


# --- KV ------------------------------------------------------------------------------------
class KvNamespace:
    """`kernel.ports.KeyValue` over a Workers KV binding."""

    def __init__(self, binding: Any) -> None:
        self._kv = binding

    async def get(self, key: str) -> str | None:
        check_kv_key(key)
        with _boundary("KV get failed"):
            value = await self._kv.get(key)
        return None if value is None else str(value)

    async def put(
        self,
        key: str,
        value: str,
        *,
        ttl_seconds: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        check_kv_put(key, value, ttl_seconds, metadata)
        options: dict[str, Any] = {}
        if ttl_seconds is not None:
            options["expirationTtl"] = ttl_seconds
        if metadata is not None:
            options["metadata"] = dict(metadata)
        with _boundary("KV put failed"):
            if options:
                await self._kv.put(key, value, options)
            else:
                await self._kv.put(key, value)

    async def delete(self, key: str) -> None:
        check_kv_key(key)
        with _boundary("KV delete failed"):
            await self._kv.delete(key)

    async def list(
        self, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> KvListing:
        check_list_limit(limit)
        options: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if cursor:
            options["cursor"] = cursor
        with _boundary("KV list failed"):
            res = await self._kv.list(options)
        keys = [str(_field(k, "name")) for k in _field(res, "keys", [])]
        complete = bool(_field(res, "list_complete", True))
        next_cursor = _field(res, "cursor")
        return KvListing(keys=keys, cursor=None if complete or not next_cursor else next_cursor)


# --- R2 ------------------------------------------------------------------------------------
def _blob_info(obj: Any) -> BlobInfo:
    http = _plain(_field(obj, "httpMetadata", {}))
    custom = _plain(_field(obj, "customMetadata", {}))
    return BlobInfo(
        key=str(_field(obj, "key")),
        size=int(_field(obj, "size", 0)),
        etag=str(_field(obj, "etag", "")),
        content_type=_field(http, "contentType"),
        custom_metadata={str(k): str(v) for k, v in dict(custom).items()},
    )


class R2Bucket:
    """`kernel.ports.BlobStore` over an R2 bucket binding."""

    def __init__(self, binding: Any) -> None:
        self._r2 = binding

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo:
        check_r2_key(key)
        options: dict[str, Any] = {"customMetadata": check_r2_metadata(custom_metadata)}
        if content_type is not None:
            options["httpMetadata"] = {"contentType": content_type}
        with _boundary("R2 put failed"):
            obj = await self._r2.put(key, bytes(data), options)
        if obj is None:  # only with conditional puts, which this port never sends
            raise BindingError(f"R2 put of {key!r} was not applied")
        return _blob_info(obj)

    async def get(self, key: str) -> Blob | None:
        check_r2_key(key)
        with _boundary("R2 get failed"):
            obj = await self._r2.get(key)
            if obj is None:
                return None
            data = _to_bytes(await obj.arrayBuffer())
        return Blob(info=_blob_info(obj), data=data)

    async def head(self, key: str) -> BlobInfo | None:
        check_r2_key(key)
        with _boundary("R2 head failed"):
            obj = await self._r2.head(key)
        return None if obj is None else _blob_info(obj)

    async def delete(self, keys: Sequence[str]) -> None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        if len(keys) > 1000:
            raise BindingError("R2 delete takes at most 1000 keys per call")
        for key in keys:
            check_r2_key(key)
        if keys:
            with _boundary("R2 delete failed"):
                await self._r2.delete(keys)

    async def list(self, prefix: str = "", limit: int = 1000) -> list[BlobInfo]:
        check_list_limit(limit)
        options = {"prefix": prefix, "limit": limit, "include": ["httpMetadata", "customMetadata"]}
        with _boundary("R2 list failed"):
            res = await self._r2.list(options)
        return [_blob_info(obj) for obj in _field(res, "objects", [])]


# --- Vectorize -----------------------------------------------------------------------------
def _js_filter(filter: VectorFilter) -> dict[str, Any]:
    # The SDK refuses tuples; $in/$nin operands must be lists.
    def conv(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return list(v) if isinstance(v, tuple) else v

    return {str(k): conv(v) for k, v in filter.items()}


class VectorizeIndex:
    """`kernel.ports.VectorIndex` over a Vectorize (V2) index binding.

    upsert/delete_by_ids return how many ids were submitted: V2 mutations are asynchronous
    and report a mutation id, not a count.
    """

    def __init__(self, binding: Any, dimensions: int) -> None:
        self._index = binding
        self.dimensions = dimensions

    async def upsert(self, vectors: Sequence[Vector]) -> int:
        check_vectors(vectors, self.dimensions)
        payload: list[dict[str, Any]] = []
        for v in vectors:
            item: dict[str, Any] = {
                "id": v.id,
                "values": [float(x) for x in v.values],
                "metadata": dict(v.metadata),
            }
            if v.namespace is not None:
                item["namespace"] = v.namespace
            payload.append(item)
        if payload:
            with _boundary("Vectorize upsert failed"):
                await self._index.upsert(payload)
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
        options: dict[str, Any] = {
            "topK": top_k,
            "returnValues": False,
            "returnMetadata": "all" if return_metadata else "none",
        }
        if namespace is not None:
            options["namespace"] = namespace
        if filter is not None:
            normalize_filter(filter)  # validation only; the platform evaluates it
            options["filter"] = _js_filter(filter)
        with _boundary("Vectorize query failed"):
            res = await self._index.query([float(x) for x in vector], options)
        return [
            VectorMatch(
                id=str(_field(m, "id")),
                score=float(_field(m, "score", 0.0)),
                metadata=dict(_plain(_field(m, "metadata", {}))) if return_metadata else None,
            )
            for m in _field(res, "matches", [])
        ]

    async def get_by_ids(self, ids: Sequence[str]) -> list[Vector]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        with _boundary("Vectorize getByIds failed"):
            found = await self._index.getByIds(wanted)
        return [
            Vector(
                id=str(_field(v, "id")),
                values=[float(x) for x in _field(v, "values", [])],
                namespace=_field(v, "namespace"),
                metadata=dict(_plain(_field(v, "metadata", {}))),
            )
            for v in found or []
        ]

    async def delete_by_ids(self, ids: Sequence[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        if wanted:
            with _boundary("Vectorize deleteByIds failed"):
                await self._index.deleteByIds(wanted)
        return len(wanted)


# --- Workers AI ----------------------------------------------------------------------------
class WorkersAI:
    """`kernel.ports.AI` over the Workers AI binding: every model is the real one."""

    def __init__(self, binding: Any) -> None:
        self._ai = binding

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        check_ai_inputs(inputs)
        with _boundary(f"Workers AI {model} failed"):
            res = await self._ai.run(model, dict(inputs))
        out = _plain(res)
        return dict(out) if isinstance(out, Mapping) else {"response": out}

    def describe(self) -> dict[str, Any]:
        from kernel.inference import EMBEDDING_MODEL, GENERATION_MODEL, RERANK_MODEL

        return {
            model: {"served_by": "Workers AI", "stand_in": False}
            for model in (EMBEDDING_MODEL, RERANK_MODEL, GENERATION_MODEL)
        }
