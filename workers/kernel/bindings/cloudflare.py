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

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from time import monotonic
from typing import Any

from kernel.bindings.limits import (
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
from kernel.bindings.ports import (
    BindingError,
    BindingLimitError,
    Blob,
    BlobInfo,
    ConstraintViolation,
    FetchedResource,
    HttpError,
    HttpReply,
    HttpStream,
    KvListing,
    OutboundError,
    QueryResult,
    SqlValue,
    Statement,
    Vector,
    VectorFilter,
    VectorMatch,
)
from kernel.bindings.url_policy import (
    REDIRECT_STATUSES,
    check_fetch_args,
    check_url,
    http_status_error,
    network_error,
    redirect_target,
    redirects_error,
    timeout_error,
    too_large_error,
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
        # D1 reports e.g. "D1_ERROR: UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT".
        if "constraint failed" in lowered or "sqlite_constraint" in lowered:
            raise ConstraintViolation(message) from exc
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
        rows_read=int(_field(meta, "rows_read", 0) or 0),
        rows_written=int(_field(meta, "rows_written", 0) or 0),
    )


class D1Database:
    """`kernel.bindings.ports.Database` over a D1 binding (`self.env.DB`)."""

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
    """`kernel.bindings.ports.KeyValue` over a Workers KV binding."""

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
        sha256=_sha256(obj),
    )


def _sha256(obj: Any) -> str | None:
    """The SHA-256 R2 verified at upload (`checksums.sha256`, an ArrayBuffer), in hex."""
    try:
        checks = _field(obj, "checksums", None)
        digest = _field(checks, "sha256", None) if checks is not None else None
        if digest is None:
            return None
        raw = digest.to_py() if hasattr(digest, "to_py") else digest
        return bytes(raw).hex() or None
    except Exception:  # an object R2 stored without a checksum, or a shape we do not know
        return None


class R2Bucket:
    """`kernel.bindings.ports.BlobStore` over an R2 bucket binding."""

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

    async def get_range(self, key: str, offset: int, length: int) -> bytes | None:
        check_r2_key(key)
        if offset < 0 or length < 0:
            raise BindingError(
                f"R2 range needs offset >= 0 and length >= 0, got {offset}, {length}"
            )
        if length == 0:  # R2 refuses an empty range; the answer only depends on existence
            return None if await self.head(key) is None else b""
        try:
            with _boundary("R2 range get failed"):
                obj = await self._r2.get(key, {"range": {"offset": offset, "length": length}})
                if obj is None:
                    return None
                data = _to_bytes(await obj.arrayBuffer())
        except BindingError:
            # A range starting at or past the end is refused ("range not satisfiable"); the
            # port answers b"" for it, like a read at EOF.
            info = await self.head(key)
            if info is None:
                return None
            if offset >= info.size:
                return b""
            raise
        size = int(_field(obj, "size", len(data)))  # the whole object's size, not the range's
        if offset >= size:
            return b""
        if len(data) > length:  # a body that ignored the range is the whole object
            data = data[offset : offset + length] if len(data) == size else data[:length]
        return data

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
    """`kernel.bindings.ports.VectorIndex` over a Vectorize (V2) index binding.

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
    """`kernel.bindings.ports.AI` over the Workers AI binding: every model is the real one."""

    def __init__(self, binding: Any) -> None:
        self._ai = binding

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        check_ai_inputs(inputs)
        with _boundary(f"Workers AI {model} failed"):
            res = await self._ai.run(model, dict(inputs))
        out = _plain(res)
        return dict(out) if isinstance(out, Mapping) else {"response": out}

    async def audio(self, model: str, inputs: Mapping[str, Any]) -> bytes:
        """Speech models answer with a ReadableStream of audio (aura-1) or `{audio}` in base64
        (melotts): either way, the bytes."""
        check_ai_inputs(inputs)
        with _boundary(f"Workers AI {model} failed"):
            res = await self._ai.run(model, dict(inputs))
        stream = getattr(res, "js_object", res)
        if hasattr(stream, "getReader"):
            return b"".join([chunk async for chunk in _read_readable(res)])
        out = _plain(res)
        if isinstance(out, Mapping) and isinstance(out.get("audio"), str):
            return base64.b64decode(out["audio"])
        if isinstance(out, bytes | bytearray):
            return bytes(out)
        raise BindingError(f"Workers AI {model} returned no audio")

    async def stream(self, model: str, inputs: Mapping[str, Any]) -> AsyncIterator[bytes]:
        """`run` with `stream: true`: Workers AI answers with a ReadableStream of SSE bytes."""
        check_ai_inputs(inputs)
        with _boundary(f"Workers AI {model} failed"):
            readable = await self._ai.run(model, {**dict(inputs), "stream": True})
        return _read_readable(readable)

    def describe(self) -> dict[str, Any]:
        from kernel.bindings.inference import EMBEDDING_MODEL, GENERATION_MODEL, RERANK_MODEL

        return {
            model: {"served_by": "Workers AI", "stand_in": False}
            for model in (EMBEDDING_MODEL, RERANK_MODEL, GENERATION_MODEL)
        }


async def _read_readable(readable: Any) -> AsyncIterator[bytes]:
    reader = getattr(readable, "js_object", readable).getReader()
    try:
        while True:
            with _boundary("Workers AI stream failed"):
                part = await reader.read()
            if part.done:
                return
            yield bytes(part.value.to_bytes())
    finally:
        reader.cancel()  # the reader went away: the model stops


# --- Outbound fetch ------------------------------------------------------------------------
_FETCH_HEADERS = {
    "user-agent": "edgerag-fetch/0.1",
    "accept": "text/html, application/xhtml+xml, application/pdf, text/markdown, text/plain, "
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document;q=0.9, */*;q=0.1",
}


def _sdk_fetch() -> Callable[..., Awaitable[Any]]:
    # The runtime SDK (Pyodide only; the CPython shim in emulator/sdk has no fetch).
    from workers import fetch  # type: ignore[attr-defined]

    return fetch


def _timeout_signal(ms: int) -> Any:
    from js import AbortSignal

    return AbortSignal.timeout(ms)


def _is_abort(exc: BaseException) -> bool:
    name = str(getattr(exc, "name", "") or type(exc).__name__)
    text = f"{name} {exc}".lower()
    return "timeout" in text or "abort" in text


def _response_header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    value = headers.get(name) if headers is not None else None
    return None if value is None else str(value)


class CloudflareOutbound:
    """`kernel.bindings.ports.Outbound` over the Workers runtime `fetch`.

    Redirects are followed by hand (`redirect="manual"`) so that every hop passes
    `kernel.bindings.url_policy.check_url` again. One `AbortSignal.timeout` per hop, sized to what is
    left of the overall budget, bounds connection *and* body reading (an aborted signal
    errors the body stream too). The size cap is checked against Content-Length before
    reading and enforced while streaming the body, so an oversized document is cancelled
    rather than buffered in the 128 MB isolate.

    What this adapter cannot check: Python Workers have no DNS API, so a *hostname* that
    resolves to a private or loopback address is not refused here (IP literals and local
    names are). On Cloudflare the subrequest leaves from Cloudflare's edge, not from inside
    our own network, so such an address reaches nothing of ours — that is the platform's
    doing, not this code's. The emulator adapter resolves names and refuses them, so the
    policy is at least exercised locally.

    `fetcher` and `abort_signal` default to the SDK's `workers.fetch` and
    `js.AbortSignal.timeout` (imported lazily); tests inject fakes.
    """

    def __init__(
        self,
        fetcher: Callable[..., Awaitable[Any]] | None = None,
        abort_signal: Callable[[int], Any] | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._abort_signal = abort_signal or _timeout_signal
        self._clock = clock

    async def fetch(
        self, url: str, *, max_bytes: int, timeout_s: float, max_redirects: int = 5
    ) -> FetchedResource:
        check_fetch_args(max_bytes, timeout_s, max_redirects)
        start = current = check_url(url)
        fetcher = self._fetcher or _sdk_fetch()
        deadline = self._clock() + timeout_s
        for _hop in range(max_redirects + 1):
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise timeout_error(current, timeout_s)
            signal = self._abort_signal(max(1, int(remaining * 1000)))
            try:
                response = await fetcher(
                    current,
                    method="GET",
                    headers=dict(_FETCH_HEADERS),
                    redirect="manual",
                    signal=signal,
                )
            except Exception as exc:
                raise self._failure(exc, current, deadline, timeout_s) from exc
            status = int(response.status)
            if status in REDIRECT_STATUSES:
                location = _response_header(response, "location")
                await _discard(response)
                current = redirect_target(current, location, status)
                continue
            if not 200 <= status < 300:
                await _discard(response)
                raise http_status_error(current, status)
            try:
                body = await _read_capped(response, max_bytes, current)
            except OutboundError:
                raise
            except Exception as exc:
                raise self._failure(exc, current, deadline, timeout_s) from exc
            return FetchedResource(
                url=start,
                final_url=current,
                status=status,
                content_type=_response_header(response, "content-type"),
                body=body,
            )
        raise redirects_error(start, max_redirects)

    def _failure(
        self, exc: BaseException, url: str, deadline: float, timeout_s: float
    ) -> OutboundError:
        if _is_abort(exc) or self._clock() >= deadline:
            return timeout_error(url, timeout_s)
        return network_error(url, str(exc) or type(exc).__name__)


async def _discard(response: Any) -> None:
    """Release a body we will not read (redirects, errors) without failing the fetch."""
    body = getattr(getattr(response, "js_object", None), "body", None)
    if body is None:
        return
    with suppress(Exception):
        await body.cancel()


async def _read_capped(response: Any, max_bytes: int, url: str) -> bytes:
    declared = _response_header(response, "content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        await _discard(response)
        raise too_large_error(url, max_bytes)
    stream = getattr(getattr(response, "js_object", None), "body", None)
    if stream is None:  # no stream to read incrementally (or an empty body)
        data = _to_bytes(await response.bytes())
        if len(data) > max_bytes:
            raise too_large_error(url, max_bytes)
        return data
    reader = stream.getReader()
    chunks: list[bytes] = []
    total = 0
    while True:
        result = await reader.read()
        if _field(result, "done", False):
            break
        chunk = _to_bytes(_field(result, "value", b""))
        total += len(chunk)
        if total > max_bytes:
            with suppress(Exception):
                await reader.cancel()
            raise too_large_error(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


class CloudflareHttp:
    """`kernel.bindings.ports.Http` over the Workers runtime `fetch`: one `AbortSignal.timeout`
    bounds the connection and the body. Redirects are not followed (provider APIs don't)."""

    def __init__(
        self,
        fetcher: Callable[..., Awaitable[Any]] | None = None,
        abort_signal: Callable[[int], Any] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._abort_signal = abort_signal or _timeout_signal

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpReply:
        fetcher = self._fetcher or _sdk_fetch()
        kwargs: dict[str, Any] = {
            "method": method,
            "headers": dict(headers),
            "redirect": "manual",
            "signal": self._abort_signal(max(1, int(timeout_s * 1000))),
        }
        if body is not None:
            kwargs["body"] = body
        try:
            response = await fetcher(url, **kwargs)
            data = await response.bytes()
        except Exception as exc:  # JS errors cross the FFI as generic exceptions
            raise HttpError(_http_kind(exc), f"{method} {url} failed: {exc}") from exc
        return HttpReply(
            status=int(response.status),
            headers={str(k).lower(): str(v) for k, v in response.headers.items()},
            body=bytes(data),
        )

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpStream:
        """The body is read from the JS ReadableStream as it arrives; the one AbortSignal bounds
        the whole exchange, and closing `chunks` cancels the reader (and so the request)."""
        fetcher = self._fetcher or _sdk_fetch()
        kwargs: dict[str, Any] = {
            "method": method,
            "headers": dict(headers),
            "redirect": "manual",
            "signal": self._abort_signal(max(1, int(timeout_s * 1000))),
        }
        if body is not None:
            kwargs["body"] = body
        try:
            response = await fetcher(url, **kwargs)
        except Exception as exc:
            raise HttpError(_http_kind(exc), f"{method} {url} failed: {exc}") from exc

        async def chunks() -> AsyncIterator[bytes]:
            reader = response.js_object.body.getReader()
            try:
                while True:
                    try:
                        part = await reader.read()
                    except Exception as exc:
                        raise HttpError(
                            _http_kind(exc), f"{method} {url}: the body broke off: {exc}"
                        ) from exc
                    if part.done:
                        return
                    yield bytes(part.value.to_bytes())
            finally:
                reader.cancel()

        return HttpStream(
            status=int(response.status),
            headers={str(k).lower(): str(v) for k, v in response.headers.items()},
            chunks=chunks(),
        )


def _http_kind(exc: BaseException) -> str:
    lowered = str(exc).lower()
    return "timeout" if "abort" in lowered or "timeout" in lowered else "network"
