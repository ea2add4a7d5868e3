"""Tool domain modules without a mesh: audit SQL and hashing, sections, entity grounding, tag
cleaning, summary sampling, the dispatcher's checks on real in-memory SQLite."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from emulator.ai.tasks import extract_entities, suggest_tags
from emulator.d1 import EmulatedD1
from ingest import sections
from kernel.bindings.env import Bindings
from kernel.contracts.api import SearchHit
from kernel.contracts.tools import TOOLS, SearchResult
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from kernel.runtime.errors import ApiError, NotFound, ValidationFailed
from rag.tools import audit
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.documents import clean_suggestion
from rag.tools.language import ground_entities, sample
from rag.usercontext import may_read

TENANT = "t_" + "a" * 24
REPO = Path(__file__).resolve().parents[2]


def test_args_hash_is_sha256_of_canonical_json() -> None:
    args = {"top_k": 3, "query": "light é"}
    canonical = '{"query":"light é","top_k":3}'
    assert audit.args_hash(args) == hashlib.sha256(canonical.encode()).hexdigest()
    assert audit.args_hash({"query": "light é", "top_k": 3}) == audit.args_hash(args)


def test_audit_page_sql_binds_the_tenant_and_every_filter() -> None:
    db = TenantDB(object(), TenantScope(TENANT))  # type: ignore[arg-type]
    q = audit.parse_query(
        {"tool": "summarize", "user_id": "u_1", "since": "2026-12-01", "cursor": "aud_" + "0" * 24}
    )
    stmt = audit.select_page(db, q)
    assert stmt.sql == (
        f"SELECT {audit.COLUMNS} FROM tool_audit WHERE tenant_id = ?1 AND tool = ?2"
        " AND user_id = ?3 AND at >= ?4 AND (at, id) < (SELECT at, id FROM tool_audit"
        " WHERE tenant_id = ?1 AND id = ?5) ORDER BY at DESC, id DESC LIMIT ?6"
    )
    assert stmt.params == (TENANT, "summarize", "u_1", "2026-12-01", "aud_" + "0" * 24, 51)
    for bad in ({"tool": "rm"}, {"since": "yesterday"}, {"user_id": "a b"}, {"x": "1"}):
        with pytest.raises(ValidationFailed):
            audit.parse_query(bad)


def test_sections_nest_by_level_and_are_found_by_path_or_title() -> None:
    text = "intro " + "A" * 20 + "B" * 20 + "C" * 20
    headings = [(6, 1, "Plants"), (26, 2, "Leaves"), (46, 1, "Animals")]
    pages = [(1, 0, 30), (2, 30, len(text))]
    outline = sections.outline(len(text), headings, pages)
    assert [(s.path, s.char_start, s.char_end) for s in outline] == [
        ((), 0, 6),
        (("Plants",), 6, 46),
        (("Plants", "Leaves"), 26, 46),
        (("Animals",), 46, len(text)),
    ]
    assert outline[1].page_start == 1 and outline[1].page_end == 2
    assert sections.find(outline, "plants > leaves").path == ("Plants", "Leaves")
    assert sections.find(outline, "ANIMALS").char_start == 46
    with pytest.raises(NotFound):
        sections.find(outline, "Fungi")
    assert sections.by_page(pages, 2).char_start == 30
    with pytest.raises(NotFound):
        sections.by_page(pages, 3)
    both = sections.find(outline, "pages 1-2", pages)
    assert (both.char_start, both.char_end, both.page_start, both.page_end) == (0, len(text), 1, 2)
    assert sections.find(outline, "Page 2", pages).char_start == 30
    for bad in ("pages 2-1", "pages 1-3", "page 9"):
        with pytest.raises(NotFound):
            sections.find(outline, bad, pages)


def test_entities_are_kept_only_where_the_text_has_them() -> None:
    text = "Ada Lovelace met Charles Babbage in London."
    items = [
        {"text": "Ada Lovelace", "type": "person"},
        {"text": "london", "type": "place"},  # case differs: the text's spelling is kept
        {"text": "Paris", "type": "place"},  # not in the text
        {"text": "Charles Babbage", "type": "wizard"},  # not a requested type
        {"name": "x"},
        "Ada",
    ]
    kept, dropped = ground_entities(text, items, {"person", "place"})
    assert [(e.text, e.type, e.char_start) for e in kept] == [
        ("Ada Lovelace", "person", 0),
        ("London", "place", 36),
    ]
    assert dropped == 4 and text[kept[1].char_start : kept[1].char_end] == "London"


def test_tag_suggestions_are_cleaned() -> None:
    tags, metadata = clean_suggestion(
        {
            "tags": ["Photosynthesis", "photosynthesis", " light ", "bad\ntag", 7, "x" * 80],
            "subject": "Biology",
            "level": "expert",
            "language": "en-GB",
        },
        5,
    )
    assert tags == ["photosynthesis", "light"]
    assert metadata == {"subject": "biology", "language": "en-GB"}


def test_sampling_keeps_order_and_budget() -> None:
    hits = [
        SearchHit(
            document_id="d",
            version=1,
            title="t",
            heading_path=[],
            chunk_id=f"c{i}",
            text="word " * 100,
            score=1.0,
            char_start=i * 500,
            char_end=i * 500 + 500,
        )
        for i in range(20)
    ]
    assert sample(hits[:3], 3000) == hits[:3]
    chosen = sample(hits, 500)
    ids = [h.chunk_id for h in chosen]
    assert 1 <= len(ids) < 20 and ids == sorted(ids, key=lambda c: int(c[1:]))
    assert ids[0] == "c0" and ids[-1] != "c1"  # spread over the document, not its start


def test_context_readers() -> None:
    teacher = Viewer("u_t", "teacher", students=("u_s",))
    assert may_read(teacher, "u_s") and may_read(teacher, "u_t")
    assert not may_read(teacher, "u_other")
    assert not may_read(Viewer("u_admin", "admin"), "u_s")


def test_stand_in_entities_and_tags() -> None:
    text = "Marie Curie studied at the University of Paris in France on 7 November 1891."
    found = {
        (e["text"], e["type"])
        for e in extract_entities(text, ["person", "place", "organization", "date"])
    }
    assert {
        ("Marie Curie", "person"),
        ("University of Paris", "organization"),
        ("France", "place"),
        ("7 November 1891", "date"),
    } <= found
    assert extract_entities(text, ["date"]) == [{"text": "7 November 1891", "type": "date"}]
    assert suggest_tags("Leaves leaves leaves make sugar. Sugar feeds roots.", 2)["tags"] == [
        "leaves",
        "sugar",
    ]


def test_the_dispatcher_checks_then_audits_every_outcome(tmp_path: Path) -> None:
    db = EmulatedD1(tmp_path / "d1.sqlite", migrations_dir=REPO / "migrations")
    db.apply_migrations()
    bindings: Any = Bindings(worker="rag", adapter="emulator", raw_env=None, db=db)

    async def fast(box: Toolbox, args: Any, caller: Caller) -> BaseModel:
        return SearchResult(passages=[])

    async def slow(box: Toolbox, args: Any, caller: Caller) -> BaseModel:
        await asyncio.sleep(5)
        return SearchResult(passages=[])

    async def main() -> list[tuple[str, str | None]]:
        async def no_embed(text: str) -> list[float]:
            return []

        box = Toolbox(
            bindings,
            no_embed,
            {"search_knowledge_base": fast, "ingest_document": slow},
            timeout_cap_s=0.05,
        )
        student = Caller(TenantScope(TENANT, Viewer("u_s", "student")), "req_1", {})
        teacher = Caller(
            TenantScope(TENANT, Viewer("u_t", "teacher")),
            "req_2",
            {},
            model_requested=True,
            allow_writes=False,
        )
        writer = Caller(TenantScope(TENANT, Viewer("u_t", "teacher")), "req_3", {})
        calls = [
            (student, "search_knowledge_base", {"query": "light"}),
            (student, "nope", {}),
            (student, "ingest_document", {"title": "x", "text": "y"}),
            (teacher, "ingest_document", {"title": "x", "text": "y"}),
            (writer, "ingest_document", {"title": "x", "text": "y"}),
            (student, "search_knowledge_base", {"query": 5}),
        ]
        out: list[tuple[str, str | None]] = []
        for caller, name, args in calls:
            try:
                await box.call(name, args, caller)
                out.append((name, None))
            except ApiError as exc:
                out.append((name, exc.code))
        return out

    outcomes = asyncio.run(main())
    assert outcomes == [
        ("search_knowledge_base", None),
        ("nope", "unknown_tool"),
        ("ingest_document", "tool_forbidden"),
        ("ingest_document", "tool_not_enabled"),
        ("ingest_document", "tool_timeout"),
        ("search_knowledge_base", "validation_error"),
    ]
    rows = asyncio.run(
        db.execute(
            "SELECT tool, error_code, model_requested, user_id FROM tool_audit ORDER BY rowid"
        )
    ).rows
    assert [(r["tool"], r["error_code"]) for r in rows] == outcomes
    assert [r["model_requested"] for r in rows] == [0, 0, 0, 1, 0, 0]
    assert set(TOOLS) == {
        "search_knowledge_base",
        "get_document",
        "get_user_context",
        "summarize",
        "extract_entities",
        "classify_intent",
        "tag_document",
        "ingest_document",
        "get_performance_analysis",
    }
