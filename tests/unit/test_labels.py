"""Labels (titles, tags, names, metadata) refuse control characters; request types are strict."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from kernel.contracts.api import (
    CreateSession,
    CreateTenant,
    DocumentOptions,
    JsonDocument,
    SearchRequest,
    TenantSettings,
)
from kernel.runtime.errors import ValidationFailed
from kernel.runtime.http import validate

HOSTILE = {
    "NUL": "a\x00b",
    "ESC (ANSI colour)": "\x1b[31mred\x1b[0m",
    "CR/LF (log forging)": "ok\r\nlevel=error",
    "newline": "two\nlines",
    "tab": "a\tb",
    "DEL": "a\x7fb",
    "C1 control (CSI)": "a\x9b31mb",
    "right-to-left override": "invoice\u202etxt.exe",
    "line separator": "a\u2028b",
    "lone surrogate": "a\ud800b",
}


def refused(model: type[BaseModel], data: dict[str, Any]) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate(model, data)
    return caught.value


@pytest.mark.parametrize("bad", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (DocumentOptions, lambda v: {"title": v}, "title"),
        (DocumentOptions, lambda v: {"tags": ["fine", v]}, "tags.1"),
        (DocumentOptions, lambda v: {"metadata": {v: "x"}}, "metadata"),
        (JsonDocument, lambda v: {"title": v, "text": "body"}, "title"),
        (CreateTenant, lambda v: {"name": v}, "name"),
        (CreateSession, lambda v: {"title": v}, "title"),
    ],
    ids=["title", "tag", "metadata-key", "json-title", "tenant-name", "session-title"],
)
def test_labels_refuse_control_characters(
    model: type[BaseModel], data: Any, field: str, bad: str
) -> None:
    error = refused(model, data(bad))
    assert error.message.startswith(f"{field}"), error.message
    assert "control" in error.message or "format" in error.message or "surrogate" in error.message


def test_labels_keep_ordinary_unicode_and_trim_outer_spaces() -> None:
    options = validate(
        DocumentOptions,
        {
            "title": "  Éléments de géométrie — 第一章 👩‍🏫 ",
            "tags": [" physics ", "עברית", "क्षेत्र"],
            "metadata": {"course": "Physics 101", "year": 2026, "graded": True, "w": 0.5},
        },
    )
    assert options.title == "Éléments de géométrie — 第一章 👩‍🏫"  # ZWJ emoji survive
    assert options.tags == ["physics", "עברית", "क्षेत्र"]
    assert options.metadata == {"course": "Physics 101", "year": 2026, "graded": True, "w": 0.5}


def test_blank_labels_are_refused() -> None:
    assert refused(DocumentOptions, {"title": "   "}).message.startswith("title")
    assert refused(CreateTenant, {"name": " \u3000 "}).message.startswith("name")


def test_metadata_values_are_multi_line_text_without_other_controls() -> None:
    # A description may span lines; CRLF and CR become LF so no value can rewrite a terminal line.
    options = validate(DocumentOptions, {"metadata": {"notes": "line one\r\nline two\rthree\tend"}})
    assert options.metadata["notes"] == "line one\nline two\nthree\tend"
    for bad in ("a\x00b", "\x1b[2J", "a\x7f", "a\u202eb", "a\ud800"):
        error = refused(DocumentOptions, {"metadata": {"notes": bad}})
        assert error.message.startswith("metadata"), error.message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"query": "x", "top_k": True}, "top_k"),
        ({"query": "x", "top_k": "5"}, "top_k"),
        ({"query": "x", "top_k": 5.0}, "top_k"),
        ({"query": "x", "dense_weight": "0.5"}, "dense_weight"),
        ({"query": "x", "rerank": 1}, "rerank"),
        ({"query": "x", "rerank": "false"}, "rerank"),
        ({"query": 5}, "query"),
        ({"query": "x", "filters": {"tags": "a"}}, "filters.tags"),
    ],
)
def test_request_types_are_strict(data: dict[str, Any], field: str) -> None:
    assert refused(SearchRequest, data).message.startswith(field)


def test_strict_still_accepts_json_native_values() -> None:
    query = validate(SearchRequest, {"query": "x", "top_k": 5, "dense_weight": 1, "rerank": False})
    assert (query.top_k, query.dense_weight, query.rerank) == (5, 1.0, False)
    assert validate(TenantSettings, {"chunk_tokens": 128}).chunk_tokens == 128
    assert refused(TenantSettings, {"chunk_tokens": "128"}).message.startswith("chunk_tokens")
