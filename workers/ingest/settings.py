"""Tenant ingest settings: chunk sizes and what one document may become.

Each limit has a deployment value (a Worker variable, else the default below) that is both the
default and the ceiling: a tenant may lower its limits, never raise them past the deployment's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ingest.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS
from ingest.extract import Limits
from ingest.extract.base import (
    DEFAULT_MAX_CHUNKS,
    DEFAULT_MAX_INFLATED_BYTES,
    DEFAULT_MAX_TEXT_CHARS,
)
from kernel.bindings.env import Bindings
from kernel.bindings.ports import OutboundError
from kernel.bindings.url_policy import check_url
from kernel.contracts.api import TenantSettings
from kernel.runtime.errors import ValidationFailed

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# setting → (deployment variable, default)
LIMITS: dict[str, tuple[str, int]] = {
    "max_upload_bytes": ("EDGERAG_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
    "max_inflated_bytes": ("EDGERAG_MAX_INFLATED_BYTES", DEFAULT_MAX_INFLATED_BYTES),
    "max_text_chars": ("EDGERAG_MAX_TEXT_CHARS", DEFAULT_MAX_TEXT_CHARS),
    "max_chunks": ("EDGERAG_MAX_CHUNKS", DEFAULT_MAX_CHUNKS),
}
# Stored as JSON arrays; None = no narrowing / the built-in set.
LISTS = ("llm_providers", "llm_models", "entity_types", "intent_labels", "recording_dimensions")
COLUMNS = (
    "chunk_tokens",
    "chunk_overlap",
    *LIMITS,
    *LISTS,
    "translation_provider",
    "analyzer_url",
)


@dataclass(frozen=True)
class IngestSettings:
    chunk_tokens: int
    chunk_overlap: int
    max_upload_bytes: int
    limits: Limits
    llm_providers: list[str] | None = None
    llm_models: list[str] | None = None
    entity_types: list[dict[str, str]] | None = None
    intent_labels: list[dict[str, str]] | None = None
    translation_provider: str | None = None
    analyzer_url: str | None = None  # None: the deployment's EDGERAG_ANALYZER_URL
    recording_dimensions: list[dict[str, str]] | None = None  # None: the signal dimensions

    def public(self) -> dict[str, Any]:
        return {
            "translation_provider": self.translation_provider,
            "analyzer_url": self.analyzer_url,
            "recording_dimensions": self.recording_dimensions,
            "llm_providers": self.llm_providers,
            "llm_models": self.llm_models,
            "entity_types": self.entity_types,
            "intent_labels": self.intent_labels,
            "chunk_tokens": self.chunk_tokens,
            "chunk_overlap": self.chunk_overlap,
            "max_upload_bytes": self.max_upload_bytes,
            "max_inflated_bytes": self.limits.max_inflated_bytes,
            "max_text_chars": self.limits.max_text_chars,
            "max_chunks": self.limits.max_chunks,
        }


def ceilings(b: Bindings) -> dict[str, int]:
    return {name: int(b.var(var) or default) for name, (var, default) in LIMITS.items()}


def effective(b: Bindings, row: dict[str, Any]) -> IngestSettings:
    """The stored row (None = not set) resolved against the deployment's values."""
    top = ceilings(b)
    value = {n: top[n] if row.get(n) is None else min(int(row[n]), top[n]) for n in LIMITS}
    tokens, overlap = row.get("chunk_tokens"), row.get("chunk_overlap")
    return IngestSettings(
        chunk_tokens=DEFAULT_MAX_TOKENS if tokens is None else int(tokens),
        chunk_overlap=DEFAULT_OVERLAP_TOKENS if overlap is None else int(overlap),
        max_upload_bytes=value["max_upload_bytes"],
        limits=Limits(
            max_inflated_bytes=value["max_inflated_bytes"],
            max_text_chars=value["max_text_chars"],
            max_chunks=value["max_chunks"],
        ),
        llm_providers=_list(row.get("llm_providers")),
        llm_models=_list(row.get("llm_models")),
        entity_types=_objects(row.get("entity_types")),
        intent_labels=_objects(row.get("intent_labels")),
        translation_provider=row.get("translation_provider"),
        analyzer_url=row.get("analyzer_url"),
        recording_dimensions=_objects(row.get("recording_dimensions")),
    )


def _objects(stored: Any) -> list[dict[str, str]] | None:
    if stored is None:
        return None
    value = json.loads(stored) if isinstance(stored, str) else stored
    return [{str(k): str(v) for k, v in item.items()} for item in value]


def _list(stored: Any) -> list[str] | None:
    if stored is None:
        return None
    value = json.loads(stored) if isinstance(stored, str) else stored
    return [str(v) for v in value]


def apply_change(b: Bindings, row: dict[str, Any], change: TenantSettings) -> dict[str, Any]:
    """The row to store after a PATCH: omitted fields keep their stored value."""
    sent = change.model_dump(exclude_none=True)
    top = ceilings(b)
    for name, value in sent.items():
        if name in top and value > top[name]:
            raise ValidationFailed(f"{name}: this deployment allows at most {top[name]}")
    if "analyzer_url" in change.model_fields_set:
        url = sent.get("analyzer_url")
        if url is not None:
            try:
                check_url(url)
            except OutboundError as exc:
                raise ValidationFailed.field("analyzer_url", str(exc)) from exc
            if not url.startswith("https://"):
                raise ValidationFailed.field("analyzer_url", "a tenant's analyzer is an https URL")
    new = {name: row.get(name) for name in COLUMNS} | sent
    if "analyzer_url" in change.model_fields_set:
        new["analyzer_url"] = sent.get("analyzer_url")  # an explicit null: the deployment's
    for name in LISTS:  # stored as JSON; an explicit null resets the list to "all"
        if name in change.model_fields_set:
            value = sent.get(name)
            new[name] = None if value is None else json.dumps(value)
    current = effective(b, new)
    if current.chunk_overlap >= current.chunk_tokens:
        raise ValidationFailed("chunk_overlap: must be smaller than chunk_tokens")
    return new
