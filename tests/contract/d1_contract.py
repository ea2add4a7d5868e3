"""Contract for `kernel.bindings.ports.Database` (D1). Mixed into a test class that provides `db`.

Portable: no CPython-only imports, so the edge tier can run it in Pyodide against
`kernel.bindings.cloudflare.D1Database`. Every test starts from an empty database.
"""

from __future__ import annotations

import pytest

from kernel.bindings.ports import (
    D1_MAX_BOUND_PARAMS,
    D1_MAX_ROW_BYTES,
    D1_MAX_STATEMENT_BYTES,
    BindingError,
    BindingLimitError,
    ConstraintViolation,
    Database,
    Statement,
)

NOTES = "CREATE TABLE notes (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, body TEXT, n REAL)"


class D1Contract:
    @pytest.fixture
    def db(self) -> Database:
        raise NotImplementedError("the implementing test class provides `db`")

    async def test_implements_port(self, db: Database) -> None:
        assert isinstance(db, Database)

    async def test_insert_then_select_returns_dict_rows(self, db: Database) -> None:
        await db.execute(NOTES)
        res = await db.execute(
            "INSERT INTO notes (tenant_id, body, n) VALUES (?, ?, ?)", ["t1", "hello", 1.5]
        )
        assert res.changes == 1
        assert res.last_row_id == 1
        rows = (await db.execute("SELECT id, tenant_id, body, n FROM notes")).rows
        assert rows == [{"id": 1, "tenant_id": "t1", "body": "hello", "n": 1.5}]

    async def test_values_round_trip(self, db: Database) -> None:
        await db.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, z TEXT)")
        await db.execute(
            "INSERT INTO v VALUES (?, ?, ?, ?, ?)", [42, 0.25, "héllo ✓", b"\x00\xffab", None]
        )
        (row,) = (await db.execute("SELECT * FROM v")).rows
        assert row == {"i": 42, "r": 0.25, "t": "héllo ✓", "b": b"\x00\xffab", "z": None}

    async def test_update_reports_changes(self, db: Database) -> None:
        await db.execute(NOTES)
        for body in ("a", "b", "c"):
            await db.execute("INSERT INTO notes (tenant_id, body) VALUES ('t1', ?)", [body])
        res = await db.execute("UPDATE notes SET n = 1 WHERE body != ?", ["a"])
        assert res.changes == 2
        assert (await db.execute("SELECT count(*) AS c FROM notes WHERE n = 1")).rows == [{"c": 2}]

    async def test_sql_errors_raise_binding_error(self, db: Database) -> None:
        with pytest.raises(BindingError):
            await db.execute("SELECT * FROM missing_table")
        with pytest.raises(BindingError) as syntax:
            await db.execute("SELEC 1")
        assert not isinstance(syntax.value, ConstraintViolation)

    async def test_constraints_and_foreign_keys_are_enforced(self, db: Database) -> None:
        await db.execute("CREATE TABLE tenants (id TEXT PRIMARY KEY)")
        await db.execute(
            "CREATE TABLE docs (id TEXT PRIMARY KEY, "
            "tenant_id TEXT NOT NULL REFERENCES tenants(id))"
        )
        await db.execute("INSERT INTO tenants VALUES ('t1')")
        await db.execute("INSERT INTO docs VALUES ('d1', 't1')")
        with pytest.raises(ConstraintViolation):
            await db.execute("INSERT INTO docs VALUES ('d1', 't1')")  # duplicate primary key
        with pytest.raises(ConstraintViolation):
            await db.execute("INSERT INTO docs VALUES ('d2', 'nope')")  # D1 enforces FKs
        with pytest.raises(ConstraintViolation):
            await db.execute("INSERT INTO docs VALUES (NULL, NULL)")  # NOT NULL

    async def test_batch_returns_one_result_per_statement(self, db: Database) -> None:
        await db.execute(NOTES)
        results = await db.batch(
            [
                Statement("INSERT INTO notes (tenant_id, body) VALUES (?, ?)", ("t1", "x")),
                Statement("INSERT INTO notes (tenant_id, body) VALUES (?, ?)", ("t1", "y")),
                Statement("SELECT body FROM notes ORDER BY id"),
            ]
        )
        assert [r.changes for r in results[:2]] == [1, 1]
        assert results[1].last_row_id == 2
        assert results[2].rows == [{"body": "x"}, {"body": "y"}]

    async def test_batch_is_atomic(self, db: Database) -> None:
        await db.execute(NOTES)
        await db.execute("INSERT INTO notes (id, tenant_id, body) VALUES (1, 't1', 'keep')")
        with pytest.raises(ConstraintViolation):  # the duplicate key, typed, in a batch too
            await db.batch(
                [
                    Statement("INSERT INTO notes (id, tenant_id, body) VALUES (2, 't1', 'new')"),
                    Statement("UPDATE notes SET body = 'changed' WHERE id = 1"),
                    Statement("INSERT INTO notes (id, tenant_id, body) VALUES (1, 't1', 'dup')"),
                ]
            )
        rows = (await db.execute("SELECT id, body FROM notes ORDER BY id")).rows
        assert rows == [{"id": 1, "body": "keep"}]

    async def test_fts5_match_ranks_with_bm25_and_porter(self, db: Database) -> None:
        await db.execute(
            "CREATE VIRTUAL TABLE chunks USING fts5(body, tenant_id UNINDEXED, "
            "tokenize = 'porter unicode61')"
        )
        docs = [
            ("t1", "Running shoes for runners who run daily"),
            ("t1", "A quiet library with many books"),
            ("t1", "She runs in the morning"),
            ("t2", "Running is popular"),
        ]
        for tenant, body in docs:
            await db.execute("INSERT INTO chunks (tenant_id, body) VALUES (?, ?)", [tenant, body])
        rows = (
            await db.execute(
                "SELECT rowid, bm25(chunks) AS score FROM chunks "
                "WHERE chunks MATCH ? AND tenant_id = ? ORDER BY bm25(chunks)",
                ["run", "t1"],
            )
        ).rows
        # porter stems running/runners/runs to "run"; bm25 is lower for better matches.
        assert [r["rowid"] for r in rows] == [1, 3]
        assert rows[0]["score"] < rows[1]["score"] < 0

    async def test_fts5_unicode61_folds_case_and_diacritics(self, db: Database) -> None:
        await db.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61')")
        await db.execute("INSERT INTO t (body) VALUES (?)", ["Un CAFÉ crème à Paris"])
        await db.execute("INSERT INTO t (body) VALUES (?)", ["tea"])
        for query in ("cafe", "CREME", "paris"):
            rows = (await db.execute("SELECT rowid FROM t WHERE t MATCH ?", [query])).rows
            assert rows == [{"rowid": 1}], query
        phrase = await db.execute("SELECT rowid FROM t WHERE t MATCH ?", ['"cafe creme"'])
        assert phrase.rows == [{"rowid": 1}]

    async def test_bound_parameter_limit(self, db: Database) -> None:
        marks = ",".join("?" * D1_MAX_BOUND_PARAMS)
        ok = await db.execute(f"SELECT {marks}", list(range(D1_MAX_BOUND_PARAMS)))
        assert len(ok.rows) == 1
        marks = ",".join("?" * (D1_MAX_BOUND_PARAMS + 1))
        with pytest.raises(BindingLimitError):
            await db.execute(f"SELECT {marks}", list(range(D1_MAX_BOUND_PARAMS + 1)))

    async def test_bound_parameter_limit_applies_in_batch(self, db: Database) -> None:
        marks = ",".join("?" * (D1_MAX_BOUND_PARAMS + 1))
        with pytest.raises(BindingLimitError):
            await db.batch([Statement(f"SELECT {marks}", tuple(range(D1_MAX_BOUND_PARAMS + 1)))])

    async def test_statement_size_limit(self, db: Database) -> None:
        head = "SELECT 1 AS one -- "
        ok = head + "x" * (D1_MAX_STATEMENT_BYTES - len(head) - 1000)
        assert (await db.execute(ok)).rows == [{"one": 1}]
        with pytest.raises(BindingLimitError):
            await db.execute(head + "x" * D1_MAX_STATEMENT_BYTES)

    async def test_row_size_limit(self, db: Database) -> None:
        await db.execute("CREATE TABLE blobs (b BLOB)")
        await db.execute("INSERT INTO blobs VALUES (?)", [b"\x01" * (D1_MAX_ROW_BYTES // 2)])
        with pytest.raises(BindingLimitError):
            await db.execute("INSERT INTO blobs VALUES (?)", [b"\x01" * (D1_MAX_ROW_BYTES + 1)])
        with pytest.raises(BindingLimitError):
            await db.execute("INSERT INTO blobs VALUES (?)", ["é" * (D1_MAX_ROW_BYTES // 2 + 1)])
        assert (await db.execute("SELECT count(*) AS c FROM blobs")).rows == [{"c": 1}]

    async def test_sqlite_version_is_not_authorized(self, db: Database) -> None:
        with pytest.raises(BindingError, match="not authorized"):
            await db.execute("SELECT sqlite_version() AS v")
