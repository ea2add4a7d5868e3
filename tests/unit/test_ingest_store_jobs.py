"""ingest.store's SQL (built purely: tested by its text, then run on the emulated D1 with the
repo's migrations) and ingest.jobs' pure decisions."""

from __future__ import annotations

import json

import pytest

from emulator.d1 import EmulatedD1
from ingest import jobs, store
from ingest.extract.base import Extracted
from ingest.uploads import Upload
from kernel.bindings.ports import D1_MAX_BOUND_PARAMS, BindingLimitError
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from kernel.runtime.errors import UpstreamError, ValidationFailed

A, B = "t_" + "a" * 24, "t_" + "b" * 24


def _db(d1: object, tenant: str = A, viewer: Viewer | None = None) -> TenantDB:
    return TenantDB(d1, TenantScope(tenant, viewer))  # type: ignore[arg-type]


async def _document(db: TenantDB, document_id: str, **kw: object) -> None:
    fields: dict[str, object] = {
        "title": "T",
        "visibility": "tenant",
        "owner_id": "u_1",
        "tags": [],
        "metadata": {},
        **kw,
    }
    await db.run(store.insert_document(db, document_id=document_id, **fields))  # type: ignore[arg-type]


# --- SQL text ----------------------------------------------------------------------------
def test_multi_row_insert_binds_the_tenant_once_and_stays_under_d1s_parameter_cap() -> None:
    db = _db(object())
    rows = [(f"c_{i}", i, "text") for i in range(70)]
    statements = store.multi_row_insert(db, "INSERT INTO t (tenant_id, id, n, body)", rows)
    assert all(len(s.params) <= D1_MAX_BOUND_PARAMS for s in statements)
    assert sum((len(s.params) - 1) // 3 for s in statements) == 70
    first = statements[0]
    assert first.sql.startswith("INSERT INTO t (tenant_id, id, n, body) VALUES (?1, ?2, ?3, ?4),")
    assert first.params[:4] == (A, "c_0", 0, "text")
    assert store.multi_row_insert(db, "INSERT INTO t (tenant_id, id)", []) == []


def test_every_tenant_statement_binds_the_tenant_first() -> None:
    db = _db(object())
    built = [
        store.select_document(db, "d_1"),
        store.select_documents(db, 10, None, Viewer("u_s", "student")),
        store.set_deleted(db, "d_1", True),
        store.select_versions(db, "d_1"),
        *store.promote(db, "d_1", 2),
        *store.delete_chunks(db, [f"c_{i}" for i in range(250)]),
        *store.purge_rows(db, "d_1"),
    ]
    for stmt in built:
        assert "tenant_id = ?1" in stmt.sql or stmt.sql.startswith("INSERT"), stmt.sql
        assert stmt.params[0] == A
        assert len(stmt.params) <= D1_MAX_BOUND_PARAMS
    assert "deleted_at IS NULL" in store.select_document(db, "d_1").sql
    assert (
        "deleted_at"
        not in store.select_document(db, "d_1", include_deleted=True).sql.split("WHERE")[1]
    )


def test_the_sweeper_query_is_the_one_cross_tenant_statement() -> None:
    stmt = store.pending_versions(1000.0, 20)
    assert "tenant_id = ?1" not in stmt.sql and stmt.params == (1000.0, 20)
    assert "lease_until IS NULL OR lease_until < ?1" in stmt.sql


# --- on the emulated D1 ------------------------------------------------------------------
async def test_soft_delete_and_restore_are_guarded_transitions(d1: EmulatedD1) -> None:
    db = _db(d1)
    await _document(db, "d_1")
    assert (await db.run(store.set_deleted(db, "d_1", True))).changes == 1
    assert (await db.run(store.set_deleted(db, "d_1", True))).changes == 0  # already deleted
    assert (await db.run(store.select_document(db, "d_1"))).rows == []
    assert len((await db.run(store.select_document(db, "d_1", include_deleted=True))).rows) == 1
    assert (await db.run(store.set_deleted(db, "d_1", False))).changes == 1
    assert (await db.run(store.set_deleted(db, "d_1", False))).changes == 0  # not deleted
    other = _db(d1, B)
    assert (await other.run(store.set_deleted(other, "d_1", True))).changes == 0  # not theirs


async def test_version_numbers_are_claimed_once(d1: EmulatedD1) -> None:
    db = _db(d1)
    await _document(db, "d_1", title="Old")
    labels = store.DocumentLabels(title="New")
    assert (await db.run(store.bump_latest_version(db, "d_1", 2, labels))).changes == 1
    # A concurrent upload that also read latest_version = 1 loses the race, changing nothing.
    assert (await db.run(store.bump_latest_version(db, "d_1", 2, labels))).changes == 0
    (row,) = (await db.run(store.select_document(db, "d_1"))).rows
    assert (row["latest_version"], row["title"]) == (2, "New")
    assert (await db.run(store.update_labels(db, "d_1", store.DocumentLabels()))).changes == 1
    (row,) = (await db.run(store.select_document(db, "d_1"))).rows
    assert row["title"] == "New"  # None keeps the stored value


async def test_lists_page_by_id_and_follow_visibility(d1: EmulatedD1) -> None:
    db = _db(d1)
    for n, visibility in enumerate(("tenant", "private", "students", "tenant")):
        await _document(db, f"d_{n}", visibility=visibility, owner_id="u_t")
        await db.execute(  # lists show each document with its latest version
            "INSERT INTO document_versions (tenant_id, document_id, version, status, kind,"
            " content_hash, original_key, text_key, size_bytes, text_length, chunk_count)"
            " VALUES (?1, ?2, 1, 'ready', 'text', 'h', 'o', 't', 1, 1, 1)",
            (f"d_{n}",),
        )
    student = Viewer("u_s", "student")
    rows = (await db.run(store.select_documents(db, 10, None, student))).rows
    assert [r["id"] for r in rows] == ["d_0", "d_3"]
    with_teacher = Viewer("u_s", "student", ("u_t",))
    rows = (await db.run(store.select_documents(db, 10, None, with_teacher))).rows
    assert [r["id"] for r in rows] == ["d_0", "d_2", "d_3"]
    page = (await db.run(store.select_documents(db, 2, "d_0", None))).rows
    assert [r["id"] for r in page] == ["d_1", "d_2"]


# --- ingest.jobs -------------------------------------------------------------------------
def _upload(**kw: object) -> Upload:
    fields: dict[str, object] = {"data": b"x", "content_type": "text/plain", "filename": None}
    return Upload(**{**fields, "title": None, **kw})  # type: ignore[arg-type]


def test_changed_labels_are_only_what_a_put_sent_and_changed() -> None:
    doc = {"title": "T", "visibility": "tenant", "tags": '["a"]', "metadata": "{}"}
    same = jobs.changed_labels(doc, _upload(title="T", tags=["a"], given=frozenset({"tags"})))
    assert not same
    changed = jobs.changed_labels(doc, _upload(title="U", tags=["b"], given=frozenset({"tags"})))
    assert (changed.title, changed.tags, changed.metadata) == ("U", ["b"], None)
    unsent = jobs.changed_labels(doc, _upload(tags=["z"]))  # tags not in `given`: kept
    assert unsent.tags is None
    with pytest.raises(ValidationFailed, match="visibility: a PUT cannot change it"):
        jobs.changed_labels(doc, _upload(visibility="private", given=frozenset({"visibility"})))


def test_the_idempotency_fingerprint_covers_content_and_options() -> None:
    base = jobs.request_fingerprint(_upload(title="T"), "hash")
    assert base == jobs.request_fingerprint(_upload(title="T"), "hash")
    assert base != jobs.request_fingerprint(_upload(title="T"), "other hash")
    assert base != jobs.request_fingerprint(_upload(title="T", tags=["x"]), "hash")
    assert base != jobs.request_fingerprint(_upload(title="T", visibility="private"), "hash")


def test_permanent_failures_are_told_apart_from_retryable_ones() -> None:
    assert jobs.is_permanent(ValidationFailed("bad pdf"))
    assert jobs.is_permanent(BindingLimitError("row too big"))
    assert not jobs.is_permanent(UpstreamError("AI model timed out"))
    wrapped = RuntimeError("slice failed")
    wrapped.__cause__ = ValueError("not a PDF")
    assert jobs.is_permanent(wrapped)  # the cause decides
    assert jobs.failure_reason(ValidationFailed("bad pdf")) == "bad pdf"
    assert jobs.failure_reason(TimeoutError()) == "TimeoutError"


def test_placements_give_repeated_chunks_distinct_tenant_salted_ids() -> None:
    text = "Same paragraph here.\n\n" * 3
    extracted = Extracted(text=text)
    settings = jobs.ChunkSettings(max_tokens=8, overlap_tokens=0)
    placements, tokens = jobs.plan_placements(TenantScope(A), "d_1", extracted, settings)
    ids = [p.chunk_id for p in placements]
    assert len(ids) == len(set(ids)) and set(tokens) == set(ids)
    for p in placements:
        assert text[p.char_start : p.char_end].strip()  # offsets point into the text
    others, _ = jobs.plan_placements(TenantScope(B), "d_1", extracted, settings)
    assert not set(ids) & {p.chunk_id for p in others}
    assert json.dumps([p.position for p in placements]) == json.dumps(
        sorted(p.position for p in placements)
    )
