"""The binding contracts run against the CPython emulator, plus emulator-only behaviour
(persistence across reopen, migrations, expiry with a fake clock, query deadline)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emulator.d1 import EmulatedD1
from emulator.kv import EmulatedKV
from emulator.r2 import EmulatedR2
from emulator.vectorize import EmulatedVectorize
from kernel.bindings.ports import BindingError, BindingLimitError, Statement, Vector
from tests.contract.d1_contract import D1Contract
from tests.contract.kv_contract import KvContract
from tests.contract.r2_contract import R2Contract
from tests.contract.vectorize_contract import VectorizeContract, vec

DIMS = 8


class TestEmulatedD1(D1Contract):
    @pytest.fixture
    def db(self, tmp_path: Path) -> Iterator[EmulatedD1]:
        database = EmulatedD1(tmp_path / "d1.sqlite")
        yield database
        database.close()


class TestEmulatedKV(KvContract):
    @pytest.fixture
    def kv(self, tmp_path: Path) -> Iterator[EmulatedKV]:
        store = EmulatedKV(tmp_path / "kv.sqlite")
        yield store
        store.close()


class TestEmulatedR2(R2Contract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> Iterator[EmulatedR2]:
        store = EmulatedR2(tmp_path / "r2")
        yield store
        store.close()


class TestEmulatedVectorize(VectorizeContract):
    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[EmulatedVectorize]:
        idx = EmulatedVectorize(tmp_path / "vectorize.sqlite", dimensions=DIMS)
        yield idx
        idx.close()


# --- D1: migrations, persistence, deadline --------------------------------------------------
def _migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_init.sql").write_text(
        "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n"
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(body, tokenize = 'porter unicode61');\n"
    )
    (folder / "0002_seed.sql").write_text("INSERT INTO tenants VALUES ('t1', 'Acme');\n")
    (folder / "README.md").write_text("not a migration")
    return folder


async def test_d1_migrations_apply_once_like_wrangler(tmp_path: Path) -> None:
    folder = _migrations(tmp_path)
    db = EmulatedD1(tmp_path / "d1.sqlite", migrations_dir=folder)
    assert db.apply_migrations() == ["0001_init.sql", "0002_seed.sql"]
    assert db.apply_migrations() == []
    applied = await db.execute("SELECT id, name, applied_at FROM d1_migrations ORDER BY id")
    assert [(r["id"], r["name"]) for r in applied.rows] == [
        (1, "0001_init.sql"),
        (2, "0002_seed.sql"),
    ]
    assert all(r["applied_at"] for r in applied.rows)
    (folder / "0003_more.sql").write_text("ALTER TABLE tenants ADD COLUMN plan TEXT;")
    db.close()
    reopened = EmulatedD1(tmp_path / "d1.sqlite", migrations_dir=folder)
    assert reopened.apply_migrations() == ["0003_more.sql"]
    rows = (await reopened.execute("SELECT * FROM tenants")).rows
    assert rows == [{"id": "t1", "name": "Acme", "plan": None}]
    reopened.close()


async def test_d1_failed_migration_rolls_back_and_is_not_recorded(tmp_path: Path) -> None:
    folder = _migrations(tmp_path)
    (folder / "0003_broken.sql").write_text("CREATE TABLE half (x);\nINSERT INTO nope VALUES (1);")
    db = EmulatedD1(None, migrations_dir=folder)
    with pytest.raises(BindingError, match=r"0003_broken\.sql"):
        db.apply_migrations()
    names = [r["name"] for r in (await db.execute("SELECT name FROM d1_migrations")).rows]
    assert names == ["0001_init.sql", "0002_seed.sql"]
    with pytest.raises(BindingError, match="no such table"):
        await db.execute("SELECT * FROM half")


async def test_d1_persists_across_reopen(tmp_path: Path) -> None:
    db = EmulatedD1(tmp_path / "d1.sqlite")
    await db.execute("CREATE TABLE t (x TEXT)")
    await db.batch([Statement("INSERT INTO t VALUES (?)", ("kept",))])
    db.close()
    again = EmulatedD1(tmp_path / "d1.sqlite")
    assert (await again.execute("SELECT x FROM t")).rows == [{"x": "kept"}]
    again.close()


async def test_d1_query_deadline(tmp_path: Path) -> None:
    db = EmulatedD1(None, query_timeout_s=0.05)
    endless = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT max(i) FROM c"
    with pytest.raises(BindingLimitError, match="CPU time"):
        await db.execute(endless)
    assert (await db.execute("SELECT 1 AS one")).rows == [{"one": 1}]  # still usable


async def test_d1_rows_built_in_sql_are_capped_too() -> None:
    db = EmulatedD1(None)
    with pytest.raises(BindingLimitError):
        await db.execute("SELECT zeroblob(3000000) AS b")


# --- KV: expiry and persistence ---------------------------------------------------------------
async def test_kv_expired_keys_are_invisible(tmp_path: Path) -> None:
    now = [1_000.0]
    kv = EmulatedKV(tmp_path / "kv.sqlite", clock=lambda: now[0])
    await kv.put("short", "v", ttl_seconds=60)
    await kv.put("forever", "v")
    assert await kv.get("short") == "v"
    now[0] += 61
    assert await kv.get("short") is None
    assert (await kv.list()).keys == ["forever"]


async def test_kv_persists_across_reopen(tmp_path: Path) -> None:
    kv = EmulatedKV(tmp_path / "kv.sqlite")
    await kv.put("k", "v", metadata={"a": 1})
    kv.close()
    assert await EmulatedKV(tmp_path / "kv.sqlite").get("k") == "v"


# --- R2: files stay inside the root, persistence ----------------------------------------------
def _files(folder: Path) -> set[Path]:
    return {p.resolve() for p in folder.rglob("*") if p.is_file()}


async def test_r2_keys_never_become_paths(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    r2 = EmulatedR2(root)
    await r2.put("../../outside", b"payload")
    await r2.put("/etc/passwd", b"payload")
    inside, everything = _files(root), _files(tmp_path)
    assert len(inside) >= 3  # two bodies + the metadata sidecar
    assert everything == inside
    assert not any(p.name.startswith(".tmp-") for p in inside)  # temp files were renamed


async def test_r2_persists_across_reopen(tmp_path: Path) -> None:
    r2 = EmulatedR2(tmp_path / "bucket")
    await r2.put("t1/a.txt", b"hello", content_type="text/plain", custom_metadata={"x": "1"})
    r2.close()
    blob = await EmulatedR2(tmp_path / "bucket").get("t1/a.txt")
    assert blob is not None
    assert blob.data == b"hello"
    assert blob.info.etag == hashlib.md5(b"hello").hexdigest()
    assert blob.info.custom_metadata == {"x": "1"}


# --- Vectorize: construction limits, persistence, cache consistency -----------------------------
def test_vectorize_dimension_limit() -> None:
    with pytest.raises(BindingLimitError):
        EmulatedVectorize(None, dimensions=1537)
    assert EmulatedVectorize(None, dimensions=1536).dimensions == 1536


async def test_vectorize_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    idx = EmulatedVectorize(path, dimensions=DIMS)
    await idx.upsert(
        [
            Vector("a", vec(DIMS, 1, 0), namespace="t1", metadata={"lang": "en"}),
            Vector("b", vec(DIMS, 0, 1), namespace="t2"),
        ]
    )
    await idx.delete_by_ids(["b"])
    idx.close()
    again = EmulatedVectorize(path, dimensions=DIMS)
    hits = await again.query(vec(DIMS, 1, 0), top_k=5, filter={"lang": "en"}, return_metadata=True)
    assert [(h.id, h.metadata) for h in hits] == [("a", {"lang": "en"})]
    assert await again.query(vec(DIMS, 0, 1), top_k=5, namespace="t2") == []
    again.close()
    with pytest.raises(BindingError):
        EmulatedVectorize(path, dimensions=DIMS * 2)


async def test_vectorize_matches_brute_force_after_mutations() -> None:
    rng = np.random.default_rng(7)
    idx = EmulatedVectorize(None, dimensions=16)
    data = rng.normal(size=(300, 16)).astype(np.float32)
    await idx.upsert(
        [
            Vector(f"v{i}", data[i].tolist(), namespace=f"ns{i % 3}", metadata={"g": i % 5})
            for i in range(300)
        ]
    )
    deleted = {f"v{i}" for i in range(0, 300, 7)}
    await idx.delete_by_ids(sorted(deleted))
    moved = data[1] * -1
    await idx.upsert([Vector("v1", moved.tolist(), namespace="ns2", metadata={"g": 4})])
    data[1] = moved
    namespace = {i: ("ns2" if i == 1 else f"ns{i % 3}") for i in range(300)}
    group = {i: (4 if i == 1 else i % 5) for i in range(300)}
    query = rng.normal(size=16).astype(np.float32)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    live = [i for i in range(300) if f"v{i}" not in deleted]
    for flt, ns in [(None, "ns2"), ({"g": {"$in": [1, 4]}}, "ns2"), ({"g": {"$gte": 2}}, None)]:
        expected = sorted(
            (
                i
                for i in live
                if (ns is None or namespace[i] == ns)
                and (flt is None or group[i] in ({1, 4} if "$in" in flt["g"] else {2, 3, 4}))
            ),
            key=lambda i: -scores[i],
        )[:10]
        hits = await idx.query(query.tolist(), top_k=10, namespace=ns, filter=flt)
        assert [h.id for h in hits] == [f"v{i}" for i in expected]
        assert [h.score for h in hits] == pytest.approx([float(scores[i]) for i in expected], 1e-5)
