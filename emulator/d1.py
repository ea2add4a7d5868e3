"""D1 emulator: sqlite3 with FTS5, wrangler-compatible migrations and D1's limits."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernel.bindings.limits import check_d1_statement
from kernel.bindings.ports import (
    D1_MAX_BOUND_PARAMS,
    D1_MAX_QUERY_SECONDS,
    D1_MAX_ROW_BYTES,
    D1_MAX_STATEMENT_BYTES,
    BindingError,
    BindingLimitError,
    ConstraintViolation,
    QueryResult,
    SqlValue,
    Statement,
)

# wrangler's own bookkeeping table, byte for byte, so `wrangler d1 migrations apply --local`
# and the emulator agree on what has been applied.
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS d1_migrations(
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT UNIQUE,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)"""
_MIGRATION_FILE = re.compile(r"^\d{4}_.*\.sql$")
_DENIED_FUNCTIONS = frozenset({"sqlite_version"})
_PROGRESS_STEPS = 10_000  # VM instructions between deadline checks
_MMAP_BYTES = 1 << 30  # address space only; pages are shared with the OS cache


def _require_fts5(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp._fts5_probe")
    except sqlite3.OperationalError as exc:
        raise RuntimeError(
            f"this Python's sqlite3 ({sqlite3.sqlite_version}) lacks FTS5, which D1 provides; "
            "use a CPython build linked against an SQLite with FTS5 enabled"
        ) from exc


def _authorizer(action: int, arg1: str | None, arg2: str | None, *_: str | None) -> int:
    # D1 refuses these; refusing them here makes code that relies on them fail locally too.
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class EmulatedD1:
    """`kernel.bindings.ports.Database` over one sqlite3 connection."""

    adapter_kind = "emulator"  # kernel.bindings.env passes emulator ports through unwrapped

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        migrations_dir: Path | None = None,
        query_timeout_s: float = D1_MAX_QUERY_SECONDS,
    ) -> None:
        self.path = ":memory:" if path is None else os.fspath(path)
        self.migrations_dir = migrations_dir
        self.query_timeout_s = query_timeout_s
        # isolation_level=None: autocommit, we issue BEGIN/COMMIT ourselves (batch, migrations).
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        _require_fts5(self._conn)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            # Read pages through a memory map instead of read() into a 2 MB page cache: FTS5
            # queries fetch one content row per match, scattered over the whole file (≈10% less
            # CPU for keyword search at 100k chunks, measured by `make bench-search`).
            self._conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        self._conn.execute("PRAGMA foreign_keys=ON")  # D1 enforces foreign keys by default
        # SQLite's own limits backstop the pre-checks (rows built by SQL itself, e.g. || or
        # zeroblob, never pass through the bound-parameter check).
        self._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, D1_MAX_BOUND_PARAMS)
        self._conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, D1_MAX_STATEMENT_BYTES)
        self._conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, D1_MAX_ROW_BYTES)
        self._conn.set_authorizer(_authorizer)
        self._deadline: float | None = None
        self._conn.set_progress_handler(self._over_deadline, _PROGRESS_STEPS)
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self._conn.close()

    # --- migrations (wrangler semantics) --------------------------------------------------
    def apply_migrations(self, migrations_dir: Path | None = None) -> list[str]:
        """Apply pending `NNNN_*.sql` files in order; returns the names newly applied."""
        directory = migrations_dir or self.migrations_dir
        if directory is None:
            raise ValueError("no migrations_dir given")
        conn = self._conn
        conn.execute(_MIGRATIONS_TABLE)
        done = {row[0] for row in conn.execute("SELECT name FROM d1_migrations")}
        files = sorted(p for p in Path(directory).iterdir() if _MIGRATION_FILE.match(p.name))
        applied: list[str] = []
        # A migration file is one script, not one statement: lift the per-statement limit.
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000_000)
        try:
            for file in files:
                if file.name in done:
                    continue
                try:
                    conn.executescript("BEGIN;\n" + file.read_text(encoding="utf-8"))
                    conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (file.name,))
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise BindingError(f"migration {file.name} failed: {exc}") from exc
                applied.append(file.name)
        finally:
            conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, D1_MAX_STATEMENT_BYTES)
        return applied

    # --- Database port ----------------------------------------------------------------------
    async def execute(self, sql: str, params: Sequence[SqlValue] = ()) -> QueryResult:
        check_d1_statement(sql, params)
        async with self._lock:
            try:
                return self._run(sql, params)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]:
        for stmt in statements:
            check_d1_statement(stmt.sql, stmt.params)
        async with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                results = [self._run(stmt.sql, stmt.params) for stmt in statements]
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _translate(exc) from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return results

    def _run(self, sql: str, params: Sequence[SqlValue]) -> QueryResult:
        self._deadline = time.monotonic() + self.query_timeout_s
        try:
            cur = self._conn.execute(sql, tuple(params))
            names = [d[0] for d in cur.description or ()]
            rows: list[dict[str, Any]] = [dict(zip(names, row, strict=True)) for row in cur]
        finally:
            self._deadline = None
        # rowcount is -1 for statements that change nothing (SELECT, DDL).
        changes = max(cur.rowcount, 0)
        # D1's billing units, honestly approximated: rows written = rows changed (index and
        # FTS rows not counted); rows read = rows returned + rows changed, a lower bound (SQLite
        # does not expose rows scanned).
        return QueryResult(
            rows=rows,
            changes=changes,
            last_row_id=cur.lastrowid,
            rows_read=len(rows) + changes,
            rows_written=changes,
        )

    def _over_deadline(self) -> int:
        # Non-zero aborts the running statement with "interrupted".
        return int(self._deadline is not None and time.monotonic() > self._deadline)


def _translate(exc: sqlite3.Error) -> BindingError:
    message = str(exc)
    lowered = message.lower()
    if "interrupted" in lowered:
        return BindingLimitError(
            "D1_ERROR: D1 DB exceeded its CPU time limit and was reset "
            f"(query ran longer than {D1_MAX_QUERY_SECONDS:g} s)"
        )
    if "too big" in lowered or "too long" in lowered or "too many sql variables" in lowered:
        return BindingLimitError(f"D1_ERROR: {message}: SQLITE_TOOBIG")
    if isinstance(exc, sqlite3.IntegrityError):  # D1's text for the same failure
        return ConstraintViolation(f"D1_ERROR: {message}: SQLITE_CONSTRAINT")
    if "not authorized" in lowered:
        return BindingError(f"D1_ERROR: {message}: SQLITE_AUTH")
    return BindingError(f"D1_ERROR: {message}")
