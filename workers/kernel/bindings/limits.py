"""Cloudflare limit checks shared by the Cloudflare adapters and the emulator.

Pure functions over plain Python values (no numpy, no I/O) so they run in Pyodide too.
Each raises `BindingLimitError` (over a documented limit) or `BindingError` (malformed
input the platform would reject) *before* anything reaches a binding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from kernel.bindings.ports import (
    AI_MAX_EMBED_BATCH,
    D1_MAX_BOUND_PARAMS,
    D1_MAX_ROW_BYTES,
    D1_MAX_STATEMENT_BYTES,
    KV_MAX_KEY_BYTES,
    KV_MAX_METADATA_BYTES,
    KV_MAX_VALUE_BYTES,
    KV_MIN_TTL_SECONDS,
    R2_MAX_KEY_BYTES,
    R2_MAX_METADATA_BYTES,
    VECTORIZE_FILTER_OPS,
    VECTORIZE_INDEXED_STRING_BYTES,
    VECTORIZE_MAX_DIMS,
    VECTORIZE_MAX_ID_BYTES,
    VECTORIZE_MAX_METADATA_BYTES,
    VECTORIZE_MAX_TOP_K,
    VECTORIZE_MAX_TOP_K_WITH_DATA,
    VECTORIZE_MAX_UPSERT,
    BindingError,
    BindingLimitError,
    SqlValue,
    Vector,
    VectorFilter,
)

LIST_MAX_LIMIT = 1000  # KV list and R2 list both cap a page at 1000 entries
VECTORIZE_MAX_FILTER_BYTES = 2048  # compact JSON of a query filter
_UPPER_BOUNDS = frozenset({"$lt", "$lte"})
_LOWER_BOUNDS = frozenset({"$gt", "$gte"})


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def truncate_utf8(text: str, max_bytes: int = VECTORIZE_INDEXED_STRING_BYTES) -> str:
    """Longest well-formed UTF-8 prefix within `max_bytes` (how Vectorize indexes strings)."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[:max_bytes].decode("utf-8", errors="ignore")


# --- D1 ------------------------------------------------------------------------------------
def sql_value_size(value: SqlValue) -> int:
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return utf8_len(value)
    return 8


def check_d1_statement(sql: str, params: Sequence[SqlValue]) -> None:
    if len(params) > D1_MAX_BOUND_PARAMS:
        raise BindingLimitError(
            f"D1_ERROR: too many SQL variables: {len(params)} bound parameters "
            f"(max {D1_MAX_BOUND_PARAMS})"
        )
    if utf8_len(sql) > D1_MAX_STATEMENT_BYTES:
        raise BindingLimitError(
            f"D1_ERROR: statement too long: {utf8_len(sql)} bytes (max {D1_MAX_STATEMENT_BYTES})"
        )
    for value in params:
        if value is not None and not isinstance(value, int | float | str | bytes):
            raise BindingError(f"D1_TYPE_ERROR: type {type(value).__name__} is not supported")
    # A row can never be bigger than what is bound into it; D1 caps strings/blobs/rows at 2 MB.
    if sum(sql_value_size(v) for v in params) > D1_MAX_ROW_BYTES:
        raise BindingLimitError(
            f"D1_ERROR: string or blob too big: bound values exceed {D1_MAX_ROW_BYTES} bytes "
            "(SQLITE_TOOBIG)"
        )


# --- KV ------------------------------------------------------------------------------------
def check_kv_key(key: str) -> None:
    if not key or key in {".", ".."}:
        raise BindingError(f"KV key {key!r} is not allowed")
    if utf8_len(key) > KV_MAX_KEY_BYTES:
        raise BindingLimitError(
            f"KV GET/PUT failed: 414 UTF-8 encoded length of {utf8_len(key)} exceeds key length "
            f"limit of {KV_MAX_KEY_BYTES}"
        )


def check_kv_put(
    key: str, value: str, ttl_seconds: int | None, metadata: Mapping[str, Any] | None
) -> str | None:
    """Validate a put; returns the metadata as compact JSON (None when absent)."""
    check_kv_key(key)
    if utf8_len(value) > KV_MAX_VALUE_BYTES:
        raise BindingLimitError(f"KV PUT failed: 413 value length exceeds {KV_MAX_VALUE_BYTES}")
    if ttl_seconds is not None and ttl_seconds < KV_MIN_TTL_SECONDS:
        raise BindingLimitError(
            f"KV PUT failed: 400 Invalid expiration_ttl of {ttl_seconds}. "
            f"Expiration TTL must be at least {KV_MIN_TTL_SECONDS}."
        )
    if metadata is None:
        return None
    try:
        encoded = compact_json(dict(metadata))
    except (TypeError, ValueError) as exc:
        raise BindingError(f"KV metadata is not JSON-serializable: {exc}") from exc
    if utf8_len(encoded) > KV_MAX_METADATA_BYTES:
        raise BindingLimitError(
            f"KV PUT failed: 413 metadata length of {utf8_len(encoded)} exceeds limit of "
            f"{KV_MAX_METADATA_BYTES}"
        )
    return encoded


def check_list_limit(limit: int) -> None:
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise BindingLimitError(f"list limit must be between 1 and {LIST_MAX_LIMIT}, got {limit}")


# --- R2 ------------------------------------------------------------------------------------
def check_r2_key(key: str) -> None:
    if not key:
        raise BindingError("R2 object key must not be empty")
    if utf8_len(key) > R2_MAX_KEY_BYTES:
        raise BindingLimitError(
            f"R2 key of {utf8_len(key)} bytes exceeds the {R2_MAX_KEY_BYTES}-byte limit (10020)"
        )


def check_r2_metadata(custom_metadata: Mapping[str, str] | None) -> dict[str, str]:
    meta = dict(custom_metadata or {})
    for name, value in meta.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise BindingError("R2 custom metadata keys and values must be strings")
    size = sum(utf8_len(k) + utf8_len(v) for k, v in meta.items())
    if size > R2_MAX_METADATA_BYTES:
        raise BindingLimitError(
            f"R2 custom metadata of {size} bytes exceeds the {R2_MAX_METADATA_BYTES}-byte limit"
        )
    return meta


# --- Vectorize -----------------------------------------------------------------------------
def check_dimensions(dimensions: int) -> None:
    if not 1 <= dimensions <= VECTORIZE_MAX_DIMS:
        raise BindingLimitError(
            f"Vectorize index dimensions must be 1..{VECTORIZE_MAX_DIMS}, got {dimensions}"
        )


def check_vector_values(values: Sequence[float], dimensions: int) -> None:
    if len(values) != dimensions:
        raise BindingError(
            f"VECTOR_DIMENSION_MISMATCH: vector has {len(values)} dimensions, "
            f"index expects {dimensions}"
        )
    # One C-level sum instead of a per-element loop (ingest checks millions of values):
    # a non-number raises TypeError, any NaN/inf makes the total non-finite.
    try:
        total = sum(values, 0.0)
    except TypeError:
        total = math.nan
    if not math.isfinite(total):
        raise BindingError("Vectorize values must be finite numbers")


def _check_metadata_value(name: str, value: Any) -> None:
    if not isinstance(value, str | int | float | bool):
        raise BindingError(
            f"Vectorize metadata {name!r} must be a string, number or boolean, "
            f"got {type(value).__name__}"
        )


def check_vectors(vectors: Sequence[Vector], dimensions: int) -> None:
    if len(vectors) > VECTORIZE_MAX_UPSERT:
        raise BindingLimitError(
            f"Vectorize upsert of {len(vectors)} vectors exceeds {VECTORIZE_MAX_UPSERT} per call"
        )
    for vec in vectors:
        if not vec.id:
            raise BindingError("Vectorize vector id must not be empty")
        if utf8_len(vec.id) > VECTORIZE_MAX_ID_BYTES:
            raise BindingLimitError(
                f"Vectorize vector id of {utf8_len(vec.id)} bytes exceeds "
                f"{VECTORIZE_MAX_ID_BYTES} bytes"
            )
        if vec.namespace is not None and utf8_len(vec.namespace) > VECTORIZE_MAX_ID_BYTES:
            raise BindingLimitError(f"Vectorize namespace exceeds {VECTORIZE_MAX_ID_BYTES} bytes")
        check_vector_values(vec.values, dimensions)
        for name, value in vec.metadata.items():
            _check_metadata_value(name, value)
        size = utf8_len(compact_json(dict(vec.metadata)))
        if size > VECTORIZE_MAX_METADATA_BYTES:
            raise BindingLimitError(
                f"Vectorize metadata of {size} bytes exceeds {VECTORIZE_MAX_METADATA_BYTES} bytes"
            )


def check_top_k(top_k: int, return_metadata: bool) -> None:
    cap = VECTORIZE_MAX_TOP_K_WITH_DATA if return_metadata else VECTORIZE_MAX_TOP_K
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= cap:
        raise BindingLimitError(
            f"Vectorize topK must be 1..{cap}"
            + (" when returning metadata" if return_metadata else "")
            + f", got {top_k!r}"
        )


FilterClause = tuple[str, Any]  # (operator, operand); strings already truncated to 64 B


def _scalar(value: Any, *, allow_null: bool) -> Any:
    if value is None and allow_null:
        return None
    if not isinstance(value, str | int | float | bool):
        raise BindingError(f"Vectorize filter value {value!r} must be a string, number or boolean")
    return truncate_utf8(value) if isinstance(value, str) else value


def normalize_filter(filter: VectorFilter) -> dict[str, list[FilterClause]]:
    """Validate a Vectorize metadata filter and return {field: [(op, operand), ...]}.

    Mirrors the documented rules: only the eight operators, AND of fields (no `$or`/`$and`,
    no nesting), range operators only as one lower plus one upper bound, compact JSON
    under 2048 bytes.
    """
    if not isinstance(filter, Mapping) or not filter:
        raise BindingError("Vectorize filter must be a non-empty object")
    try:
        size = utf8_len(compact_json(dict(filter)))
    except (TypeError, ValueError) as exc:
        raise BindingError(f"Vectorize filter is not JSON-serializable: {exc}") from exc
    if size >= VECTORIZE_MAX_FILTER_BYTES:
        raise BindingLimitError(
            f"Vectorize filter is {size} bytes; it must be under {VECTORIZE_MAX_FILTER_BYTES}"
        )
    out: dict[str, list[FilterClause]] = {}
    for name, spec in filter.items():
        if not isinstance(name, str) or not name or name.startswith("$") or '"' in name:
            raise BindingError(
                f"Vectorize filter key {name!r} is invalid (logical operators such as $or are "
                "not supported; keys cannot be empty, start with $ or contain a quote)"
            )
        if len(name) > 512:
            raise BindingLimitError("Vectorize filter keys are limited to 512 characters")
        if not isinstance(spec, Mapping):
            out[name] = [("$eq", _scalar(spec, allow_null=True))]
            continue
        if not spec:
            raise BindingError(f"Vectorize filter for {name!r} has no operator")
        clauses: list[FilterClause] = []
        for op, operand in spec.items():
            if op not in VECTORIZE_FILTER_OPS:
                raise BindingError(f"Vectorize filter operator {op!r} is not supported")
            if op in {"$in", "$nin"}:
                if not isinstance(operand, list | tuple) or not operand:
                    raise BindingError(f"Vectorize {op} needs a non-empty array")
                clauses.append((op, [_scalar(v, allow_null=True) for v in operand]))
            elif op in {"$eq", "$ne"}:
                clauses.append((op, _scalar(operand, allow_null=True)))
            else:
                if isinstance(operand, bool):
                    raise BindingError(f"Vectorize {op} needs a number or string")
                clauses.append((op, _scalar(operand, allow_null=False)))
        ops = {op for op, _ in clauses}
        ranged = len(ops & _UPPER_BOUNDS) <= 1 and len(ops & _LOWER_BOUNDS) <= 1
        if len(ops) > 1 and not (ops <= _UPPER_BOUNDS | _LOWER_BOUNDS and ranged):
            raise BindingError(
                f"Vectorize filter for {name!r} combines {sorted(ops)}; only one lower and one "
                "upper range bound may be combined"
            )
        out[name] = clauses
    return out


# --- Workers AI ----------------------------------------------------------------------------
def check_ai_inputs(inputs: Mapping[str, Any]) -> None:
    texts = inputs.get("text")
    if isinstance(texts, list) and len(texts) > AI_MAX_EMBED_BATCH:
        raise BindingLimitError(
            f"Workers AI embeddings take at most {AI_MAX_EMBED_BATCH} texts per call, "
            f"got {len(texts)}"
        )
