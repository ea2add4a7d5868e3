"""Binding ports: the small Pythonic interfaces domain code talks to.

Each port has two adapters: `kernel.bindings.cloudflare` wraps the JS binding from `self.env`
through the Pyodide FFI, and `emulator/` implements it in CPython. The contract suites in
`tests/contract/` run against both, so these signatures *are* the contract.

Limits are Cloudflare's (see ARCHITECTURE §3); both adapters enforce them and raise
`BindingLimitError` so code that would fail in production fails locally first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# --- limits (Cloudflare docs, 2025-26) ---------------------------------------------------
D1_MAX_BOUND_PARAMS = 100
D1_MAX_STATEMENT_BYTES = 100_000
D1_MAX_ROW_BYTES = 2_000_000
D1_MAX_QUERY_SECONDS = 30.0

KV_MAX_VALUE_BYTES = 25 * 1024 * 1024
KV_MAX_KEY_BYTES = 512
KV_MAX_METADATA_BYTES = 1024
KV_MIN_TTL_SECONDS = 60

R2_MAX_METADATA_BYTES = 8 * 1024
R2_MAX_KEY_BYTES = 1024

VECTORIZE_MAX_DIMS = 1536
VECTORIZE_MAX_TOP_K = 100
VECTORIZE_MAX_TOP_K_WITH_DATA = 20  # when returning values or all metadata
VECTORIZE_MAX_UPSERT = 1000
VECTORIZE_MAX_METADATA_BYTES = 10 * 1024
VECTORIZE_MAX_ID_BYTES = 64
VECTORIZE_INDEXED_STRING_BYTES = 64
VECTORIZE_FILTER_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$lt", "$lte", "$gt", "$gte"})

AI_MAX_EMBED_BATCH = 100
AI_MAX_TOKENS_PER_TEXT = 512


class BindingError(Exception):
    """A binding call failed (the platform said no)."""


class ConstraintViolation(BindingError):
    """D1 refused a write that breaks a constraint (UNIQUE, PRIMARY KEY, FOREIGN KEY, NOT NULL,
    CHECK). Nothing of the statement — or of its batch — was applied. Callers that expect a
    duplicate catch this type instead of matching the error text."""


class BindingLimitError(BindingError):
    """A Cloudflare limit was exceeded; the same call would fail in production."""


# --- D1 ------------------------------------------------------------------------------------
SqlValue = None | int | float | str | bytes


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[SqlValue, ...] = ()


@dataclass
class QueryResult:
    rows: list[dict[str, Any]]
    changes: int = 0
    last_row_id: int | None = None
    # What D1 bills (meta.rows_read / meta.rows_written). The emulator reports a lower bound
    # for rows_read (rows returned + rows changed): SQLite does not count rows scanned.
    rows_read: int = 0
    rows_written: int = 0


@runtime_checkable
class Database(Protocol):
    """D1: SQLite with FTS5. `batch` runs its statements in one implicit transaction."""

    async def execute(self, sql: str, params: Sequence[SqlValue] = ()) -> QueryResult: ...

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]: ...


# --- KV ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KvListing:
    keys: list[str]
    cursor: str | None  # None when complete


@runtime_checkable
class KeyValue(Protocol):
    """Workers KV: eventually consistent in production, so never use it for counters."""

    async def get(self, key: str) -> str | None: ...

    async def put(
        self,
        key: str,
        value: str,
        *,
        ttl_seconds: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def list(
        self, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> KvListing: ...


# --- R2 ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    etag: str
    content_type: str | None = None
    custom_metadata: dict[str, str] = field(default_factory=dict)
    sha256: str | None = None  # hex, when the store recorded the body's checksum (R2 checksums)


@dataclass(frozen=True)
class Blob:
    info: BlobInfo
    data: bytes


@runtime_checkable
class BlobStore(Protocol):
    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo: ...

    async def get(self, key: str) -> Blob | None: ...

    async def get_range(self, key: str, offset: int, length: int) -> bytes | None:
        """At most `length` bytes of the body from `offset` (fewer at the end of the object,
        b"" when `offset` is at or past its size); None when the key is absent. For reading
        parts of objects too big for the heap (recordings' headers)."""
        ...

    async def head(self, key: str) -> BlobInfo | None: ...

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def list(self, prefix: str = "", limit: int = 1000) -> list[BlobInfo]: ...


# --- Vectorize -----------------------------------------------------------------------------
MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Vector:
    id: str
    values: Sequence[float]
    namespace: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class VectorMatch:
    id: str
    score: float
    metadata: dict[str, MetadataValue] | None = None


# A filter is {field: value} (implicit $eq) or {field: {"$op": value}}; all clauses AND.
VectorFilter = Mapping[str, Any]


@runtime_checkable
class VectorIndex(Protocol):
    """Vectorize (cosine metric). Ids are global to the index, not per namespace."""

    dimensions: int

    async def upsert(self, vectors: Sequence[Vector]) -> int: ...

    async def query(
        self,
        vector: Sequence[float],
        *,
        top_k: int = 5,
        namespace: str | None = None,
        filter: VectorFilter | None = None,
        return_metadata: bool = False,
    ) -> list[VectorMatch]: ...

    async def get_by_ids(self, ids: Sequence[str]) -> list[Vector]: ...

    async def delete_by_ids(self, ids: Sequence[str]) -> int: ...


# --- Workers AI ----------------------------------------------------------------------------
@runtime_checkable
class AI(Protocol):
    """Workers AI: `run(model, inputs)` with the documented input/output schema per model.

    embeddings  {"text": [str, ...]}                 -> {"shape": [n, d], "data": [[float]]}
    reranker    {"query": str, "contexts": [{"text"}], "top_k"?: int}
                                                      -> {"response": [{"id": int, "score": float}]}
    generation  {"messages": [{"role", "content"}], "max_tokens"?: int}
                                                      -> {"response": str, "usage": {...}}
    speech      `audio(model, {"text", "speaker"?, "encoding"?, "container"?})` -> bytes
                (@cf/deepgram/aura-1 answers with a ReadableStream of audio)
    """

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]: ...

    async def audio(self, model: str, inputs: Mapping[str, Any]) -> bytes:
        """A text-to-speech model's audio, read whole."""
        ...

    def describe(self) -> dict[str, Any]:
        """Models served and, per model, whether it is the real one or a named stand-in."""
        ...


# --- Service bindings ----------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    stream: AsyncIterator[bytes] | None = None  # set instead of body for text/event-stream


@runtime_checkable
class Service(Protocol):
    """A service binding: an HTTP request to another Worker, bytes in and bytes out."""

    async def fetch(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> ServiceResponse: ...


# --- Outbound fetch (URL documents) ----------------------------------------------------------
OUTBOUND_REASONS: dict[str, str] = {
    "invalid_url": "the URL is malformed, carries credentials or uses a port other than 80/443/8080/8443",
    "scheme": "only http and https URLs can be fetched",
    "private_address": "the host is (or resolves to) a private, loopback, link-local or otherwise non-public address",
    "timeout": "the remote server did not answer in time",
    "too_large": "the remote document is larger than the size limit",
    "http_status": "the remote server answered with an error status",
    "redirects": "the URL redirects too many times",
    "network": "the remote server could not be reached",
    "content_type": "the remote document's media type is not supported",
}


class OutboundError(BindingError):
    """An outbound fetch was refused or failed. `reason` is one of `OUTBOUND_REASONS`.

    The message is meant for the API client (the ingest worker returns it in a 422); it never
    contains response bodies or resolved addresses.
    """

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        if reason not in OUTBOUND_REASONS:
            raise ValueError(f"unknown outbound error reason {reason!r}")
        self.reason = reason
        self.url = url
        self.status = status
        super().__init__(message or OUTBOUND_REASONS[reason])


@dataclass(frozen=True)
class FetchedResource:
    url: str  # the URL as requested, normalised by `kernel.bindings.url_policy.check_url`
    final_url: str  # after redirects
    status: int  # always 2xx: other final statuses raise OutboundError("http_status")
    content_type: str | None  # the raw Content-Type header, parameters included
    body: bytes


@runtime_checkable
class Outbound(Protocol):
    """`fetch` for URL documents: GET only, http(s) only, public addresses only.

    Every hop of a redirect chain is re-checked against `kernel.bindings.url_policy`; the whole fetch
    (all hops and the body) must finish within `timeout_s` and the body may not exceed
    `max_bytes` (after content decoding). Failures raise `OutboundError`.
    """

    async def fetch(
        self, url: str, *, max_bytes: int, timeout_s: float, max_redirects: int = 5
    ) -> FetchedResource: ...


# --- HTTP to model providers -----------------------------------------------------------------
@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes


class HttpError(BindingError):
    """A provider call that got no HTTP answer: `kind` is `timeout` or `network`."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in ("timeout", "network"):
            raise ValueError(f"unknown HTTP error kind {kind!r}")
        self.kind = kind
        super().__init__(message)


@dataclass
class HttpStream:
    """A reply whose body is read as it arrives (a provider's token stream). Iterating `chunks`
    may raise `HttpError` (the connection broke or stalled); closing it (`aclose`, or leaving
    an `async for` early) cancels the request upstream."""

    status: int
    headers: dict[str, str]  # lower-cased names
    chunks: AsyncIterator[bytes]

    async def read(self, limit: int = 64 * 1024) -> bytes:
        """The rest of the body, at most `limit` bytes (an error reply), then close."""
        out = b""
        try:
            async for chunk in self.chunks:
                out += chunk
                if len(out) >= limit:
                    break
        finally:
            await self.aclose()
        return out[:limit]

    async def aclose(self) -> None:
        close = getattr(self.chunks, "aclose", None)
        if close is not None:
            await close()


@runtime_checkable
class Http(Protocol):
    """The transport for the llm Worker's calls to model providers (httpx's seam): `send` for a
    whole reply, `open` for one read as it streams.

    Unlike `Outbound` (user-supplied document URLs: GET only, public addresses only), the URLs
    here are operator configuration — a provider's base URL may be a local model server on
    loopback. Any status is returned, never raised; no answer within `timeout_s` (connect and
    the whole body) raises `HttpError("timeout")`, a failed connection `HttpError("network")`.
    """

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpReply: ...

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> HttpStream:
        """Returns once the status and headers arrived (within `timeout_s`, else
        `HttpError("timeout")`); the body is left to `chunks`, bounded by the same `timeout_s`
        in total. Callers that need a shorter wait for the first chunk impose it themselves."""
        ...
