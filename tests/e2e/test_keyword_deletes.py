"""Deleted, superseded and invisible chunks never crowd live ones out of keyword search.

Realistic scale on the emulated D1 with the real migrations, the real ingest SQL (workers/ingest/
store.py: documents, versions, placements, chunks + FTS rows, promote, soft delete, restore) and
the real `rag.search.hybrid_search` in keyword mode. Thousands of chunks say "glacier" many times
in documents nobody may retrieve; one live chunk says it once: it must still be found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.d1 import EmulatedD1
from ingest import store
from kernel.bindings.env import Bindings
from kernel.contracts.api import SearchRequest
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from rag.search import hybrid_search

REPO = Path(__file__).resolve().parents[2]
TENANT = "t_" + "5e" * 12
TEACHER = "u_teacher"
BIG = 1500  # chunks per crowding document: far past any first-phase row budget
HEAVY = "The glacier moved. " + "Glacier ice, glacier melt, glacier flow. " * 6
LIVE_TEXT = (
    "Rivers carve valleys over thousands of years while sediment settles in the delta; "
    "one field trip also walked onto a glacier near the pass before the weather turned."
)
ADMIN = Viewer(principal_id="k_admin", role="admin")
STUDENT = Viewer(principal_id="u_student", role="student", teachers=(TEACHER,))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[EmulatedD1]:
    d1 = EmulatedD1(tmp_path / "edgerag.sqlite", migrations_dir=REPO / "migrations")
    d1.apply_migrations()
    yield d1
    d1.close()


def version_row(document_id: str, version: int, chunks: int) -> store.VersionRow:
    return store.VersionRow(
        document_id=document_id,
        version=version,
        status="queued",
        kind="text",
        content_type="text/plain",
        filename=None,
        source_url=None,
        content_hash=f"{document_id}-{version}".ljust(64, "0"),
        original_key=f"t/{TENANT}/originals/{document_id}-{version}",
        text_key=f"t/{TENANT}/text/{document_id}/{version}",
        size_bytes=1,
        text_length=1,
        page_count=None,
        chunk_count=chunks,
    )


async def add_version(
    tdb: TenantDB,
    document_id: str,
    version: int,
    texts: list[str],
    *,
    visibility: str = "tenant",
    owner: str | None = None,
) -> None:
    """What ingest writes for a version that becomes ready: rows, chunks + FTS, then promote."""
    ids = [f"c_{document_id}_{version}_{i}" for i in range(len(texts))]
    statements = []
    if version == 1:
        statements.append(
            store.insert_document(
                tdb,
                document_id=document_id,
                title=document_id,
                visibility=visibility,
                owner_id=owner,
                tags=[],
                metadata={},
            )
        )
    else:
        statements.append(
            store.bump_latest_version(tdb, document_id, version, store.DocumentLabels())
        )
    statements.append(store.insert_version(tdb, version_row(document_id, version, len(texts))))
    offset = 0
    placements = []
    for position, (cid, text) in enumerate(zip(ids, texts, strict=True)):
        placements.append(store.ChunkPlacement(position, cid, offset, offset + len(text), None, []))
        offset += len(text) + 1
    statements += store.insert_placements(tdb, document_id, version, placements)
    statements += store.insert_chunks(
        tdb, document_id, [(c, t, 40) for c, t in zip(ids, texts, strict=True)]
    )
    statements += store.promote(tdb, document_id, version)
    await tdb.batch(statements)


async def keyword(d1: EmulatedD1, viewer: Viewer, top_k: int = 10) -> list[str]:
    scope = TenantScope(TENANT, viewer=viewer)
    bindings = Bindings(worker="rag", adapter="emulator", raw_env=None, db=d1)
    request = SearchRequest(query="glacier", top_k=top_k, mode="keyword", rerank=False)

    async def no_embedding(_: str) -> list[float]:
        raise AssertionError("keyword mode must not embed")

    response = await hybrid_search(bindings, scope, request, no_embedding)
    return [hit.document_id for hit in response.results]


async def test_soft_deleted_documents_do_not_hide_a_live_mention(db: EmulatedD1) -> None:
    tdb = TenantDB(db, TenantScope(TENANT))
    await add_version(tdb, "d_live", 1, [LIVE_TEXT])
    for name in ("d_gone1", "d_gone2"):
        await add_version(tdb, name, 1, [HEAVY] * BIG)
        await tdb.batch([store.set_deleted(tdb, name, True)])

    for viewer in (ADMIN, STUDENT):
        assert await keyword(db, viewer) == ["d_live"], viewer.role

    # Soft delete stays restorable: the restored document ranks again, above the one mention.
    await tdb.batch([store.set_deleted(tdb, "d_gone1", False)])
    found = await keyword(db, ADMIN, top_k=20)
    assert found[:10] == ["d_gone1"] * 10
    assert "d_live" not in found  # 1,500 stronger matches outrank it again, as they should


async def test_superseded_versions_do_not_hide_a_live_mention(db: EmulatedD1) -> None:
    tdb = TenantDB(db, TenantScope(TENANT))
    await add_version(tdb, "d_live", 1, [LIVE_TEXT])
    for name in ("d_rewritten1", "d_rewritten2"):
        await add_version(tdb, name, 1, [HEAVY] * BIG)
        await add_version(tdb, name, 2, ["Nothing about ice here, only deserts and dunes."])

    for viewer in (ADMIN, STUDENT):
        assert await keyword(db, viewer) == ["d_live"], viewer.role


async def test_documents_a_student_may_not_see_do_not_hide_a_live_mention(
    db: EmulatedD1,
) -> None:
    tdb = TenantDB(db, TenantScope(TENANT))
    await add_version(tdb, "d_live", 1, [LIVE_TEXT])
    await add_version(tdb, "d_private", 1, [HEAVY] * BIG, visibility="private", owner="u_other")
    await add_version(
        tdb, "d_class", 1, [HEAVY] * BIG, visibility="students", owner="u_other_teacher"
    )

    assert await keyword(db, STUDENT) == ["d_live"]
    admin = await keyword(db, ADMIN, top_k=20)
    assert set(admin[:10]) <= {"d_private", "d_class"}  # admins see them: they rank first
