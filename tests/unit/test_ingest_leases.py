"""Job leases and attempt counting: the store's SQL on the emulated D1 with the real migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.d1 import EmulatedD1
from emulator.mesh import MIGRATIONS_DIR
from ingest import store
from kernel.domain.tenancy import TenantDB, TenantScope

LEASE = 60.0


@pytest.fixture
async def db(tmp_path: Path) -> TenantDB:
    d1 = EmulatedD1(tmp_path / "d1.sqlite", migrations_dir=MIGRATIONS_DIR)
    d1.apply_migrations()
    tenant = "t_" + "0" * 23 + "1"
    await d1.execute("INSERT INTO tenants (id, name) VALUES (?1, 'leases')", (tenant,))
    await d1.execute(
        "INSERT INTO documents (tenant_id, id, title, latest_version) VALUES (?1, 'd1', 'D', 1)",
        (tenant,),
    )
    await d1.execute(
        "INSERT INTO document_versions (tenant_id, document_id, version, status, kind,"
        " content_hash, original_key, text_key, size_bytes, text_length, chunk_count)"
        " VALUES (?1, 'd1', 1, 'queued', 'text', 'h', 'o', 't', 1, 1, 1)",
        (tenant,),
    )
    return TenantDB(d1, TenantScope(tenant))


async def attempts(db: TenantDB) -> int:
    row = (await db.run(store.select_version(db, "d1", 1))).rows[0]
    return int(row["attempts"])


async def test_one_lease_holder_at_a_time(db: TenantDB) -> None:
    now = 1_000.0
    assert (await db.run(store.claim_version(db, "d1", 1, now, LEASE))).changes == 1
    assert (await db.run(store.claim_version(db, "d1", 1, now + 1, LEASE))).changes == 0
    # Expired (the holder died): the next claim wins.
    assert (await db.run(store.claim_version(db, "d1", 1, now + LEASE + 1, LEASE))).changes == 1


async def test_hand_overs_of_a_long_document_are_not_counted_as_failed_attempts(
    db: TenantDB,
) -> None:
    now = 1_000.0
    for slice_no in range(5):  # claim → persist a slice → release → the follow-up claims
        t = now + slice_no
        assert (await db.run(store.claim_version(db, "d1", 1, t, LEASE))).changes == 1
        await db.run(store.renew_lease(db, "d1", 1, t + LEASE))
        await db.run(store.release_lease(db, "d1", 1))
    assert await attempts(db) == 1


async def test_claims_without_progress_keep_counting(db: TenantDB) -> None:
    """A job that crashes before persisting anything, again and again, is bounded."""
    now = 1_000.0
    for n in range(1, 4):
        t = now + n * (LEASE + 1)
        assert (await db.run(store.claim_version(db, "d1", 1, t, LEASE))).changes == 1
        assert await attempts(db) == n
