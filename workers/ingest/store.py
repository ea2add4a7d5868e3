"""SQL for documents, versions and chunks. Building statements is pure (tested by their text);
`TenantDB` binds the tenant as ?1 and runs them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from kernel.bindings.ports import D1_MAX_BOUND_PARAMS, SqlValue, Statement
from kernel.domain.fts import rowid_range
from kernel.domain.tenancy import TenantDB, Viewer

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass(frozen=True)
class VersionRow:
    document_id: str
    version: int
    status: str
    kind: str
    content_type: str | None
    filename: str | None
    source_url: str | None
    content_hash: str
    original_key: str
    text_key: str
    size_bytes: int
    text_length: int
    page_count: int | None
    chunk_count: int


@dataclass(frozen=True)
class DocumentLabels:
    """Document-level fields a PUT may change; None keeps the stored value."""

    title: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, object] | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.title, self.tags, self.metadata))

    def params(self) -> tuple[str | None, str | None, str | None]:
        return (
            self.title,
            None if self.tags is None else json.dumps(self.tags),
            None if self.metadata is None else json.dumps(self.metadata, sort_keys=True),
        )


@dataclass(frozen=True)
class ChunkPlacement:
    position: int
    chunk_id: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: list[str]


def multi_row_insert(
    db: TenantDB, head: str, rows: Sequence[Sequence[SqlValue]]
) -> list[Statement]:
    """`INSERT … VALUES (?1, …), (?1, …)` in as few statements as D1's 100-parameter cap allows.

    ?1 is the tenant in every row, so each row costs only its own columns.
    """
    if not rows:
        return []
    width = len(rows[0])
    per_statement = max(1, (D1_MAX_BOUND_PARAMS - 1) // width)
    statements = []
    for start in range(0, len(rows), per_statement):
        group = rows[start : start + per_statement]
        values: list[str] = []
        params: list[SqlValue] = []
        for row in group:
            marks = ", ".join(f"?{len(params) + i + 2}" for i in range(width))
            values.append(f"(?1, {marks})")
            params.extend(row)
        statements.append(db.statement(f"{head} VALUES {', '.join(values)}", params))
    return statements


# --- documents ---------------------------------------------------------------------------
def insert_document(
    db: TenantDB,
    *,
    document_id: str,
    title: str,
    visibility: str,
    owner_id: str | None,
    tags: list[str],
    metadata: dict[str, object],
) -> Statement:
    return db.statement(
        "INSERT INTO documents (tenant_id, id, title, visibility, owner_id, tags, metadata, latest_version)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1)",
        (
            document_id,
            title,
            visibility,
            owner_id,
            json.dumps(tags),
            json.dumps(metadata, sort_keys=True),
        ),
    )


def bump_latest_version(
    db: TenantDB, document_id: str, version: int, labels: DocumentLabels
) -> Statement:
    """Claim the next version number; labels the caller sent change now, the rest are kept."""
    return db.statement(
        f"UPDATE documents SET latest_version = ?3, title = COALESCE(?4, title),"
        f" tags = COALESCE(?5, tags), metadata = COALESCE(?6, metadata), updated_at = {NOW}"
        " WHERE tenant_id = ?1 AND id = ?2 AND latest_version = ?3 - 1",
        (document_id, version, *labels.params()),
    )


def update_labels(db: TenantDB, document_id: str, labels: DocumentLabels) -> Statement:
    """A metadata-only change (same content): the document row only, no new version."""
    return db.statement(
        f"UPDATE documents SET title = COALESCE(?2, title), tags = COALESCE(?3, tags),"
        f" metadata = COALESCE(?4, metadata), updated_at = {NOW}"
        " WHERE tenant_id = ?1 AND id = ?5 AND deleted_at IS NULL",
        (*labels.params(), document_id),
    )


def select_document(db: TenantDB, document_id: str, *, include_deleted: bool = False) -> Statement:
    deleted = "" if include_deleted else " AND deleted_at IS NULL"
    return db.statement(
        "SELECT id, title, visibility, owner_id, tags, metadata, live_version, latest_version,"
        f" created_at, updated_at, deleted_at FROM documents WHERE tenant_id = ?1 AND id = ?2{deleted}",
        (document_id,),
    )


def select_documents(
    db: TenantDB, limit: int, after: str | None, viewer: Viewer | None = None
) -> Statement:
    """A page of documents the viewer may see (kernel.domain.tenancy.Viewer; None = all)."""
    seen, seen_params = viewer.sql("d", 4) if viewer is not None else ("", [])
    return db.statement(
        "SELECT d.id, d.title, d.visibility, d.owner_id, d.tags, d.metadata, d.live_version,"
        " d.latest_version, d.created_at, d.updated_at, v.status, v.kind, v.size_bytes, v.page_count, v.chunk_count, v.content_hash"
        " FROM documents d JOIN document_versions v ON v.tenant_id = d.tenant_id"
        " AND v.document_id = d.id AND v.version = d.latest_version"
        f" WHERE d.tenant_id = ?1 AND d.deleted_at IS NULL AND d.id > ?2{seen}"
        " ORDER BY d.id LIMIT ?3",
        (after or "", limit, *seen_params),
    )


def set_deleted(db: TenantDB, document_id: str, deleted: bool) -> Statement:
    value = NOW if deleted else "NULL"
    guard = "deleted_at IS NULL" if deleted else "deleted_at IS NOT NULL"
    return db.statement(
        f"UPDATE documents SET deleted_at = {value}, updated_at = {NOW}"
        f" WHERE tenant_id = ?1 AND id = ?2 AND {guard}",
        (document_id,),
    )


# --- versions ----------------------------------------------------------------------------
def insert_version(db: TenantDB, row: VersionRow) -> Statement:
    return db.statement(
        "INSERT INTO document_versions (tenant_id, document_id, version, status, kind, content_type,"
        " filename, source_url, content_hash, original_key, text_key, size_bytes, text_length,"
        " page_count, chunk_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        (
            row.document_id,
            row.version,
            row.status,
            row.kind,
            row.content_type,
            row.filename,
            row.source_url,
            row.content_hash,
            row.original_key,
            row.text_key,
            row.size_bytes,
            row.text_length,
            row.page_count,
            row.chunk_count,
        ),
    )


def select_versions(db: TenantDB, document_id: str) -> Statement:
    return db.statement(
        "SELECT version, status, kind, content_type, filename, source_url, content_hash, size_bytes,"
        " text_length, page_count, chunk_count, error, created_at, updated_at"
        " FROM document_versions WHERE tenant_id = ?1 AND document_id = ?2 ORDER BY version",
        (document_id,),
    )


def select_version(db: TenantDB, document_id: str, version: int) -> Statement:
    return db.statement(
        "SELECT document_id, version, status, kind, content_hash, original_key, text_key, chunk_count,"
        " error, attempts, lease_until FROM document_versions"
        " WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3",
        (document_id, version),
    )


def claim_version(
    db: TenantDB, document_id: str, version: int, now: float, lease_seconds: float
) -> Statement:
    """Take the processing lease; exactly one invocation wins (changes == 1)."""
    return db.statement(
        f"UPDATE document_versions SET status = 'processing', attempts = attempts + 1, lease_until = ?4,"
        f" updated_at = {NOW} WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3"
        " AND status IN ('queued', 'processing') AND (lease_until IS NULL OR lease_until < ?5)",
        (document_id, version, now + lease_seconds, now),
    )


def renew_lease(db: TenantDB, document_id: str, version: int, until: float) -> Statement:
    """Extend the lease after a persisted slice. Progress proves the job is not stuck, so the
    attempt count restarts at this attempt: `attempts` counts claims in a row that made no
    progress (crash loops stay bounded; hand-overs of a long document are not failures)."""
    return db.statement(
        "UPDATE document_versions SET lease_until = ?4, attempts = 1"
        " WHERE tenant_id = ?1 AND document_id = ?2"
        " AND version = ?3 AND status = 'processing'",
        (document_id, version, until),
    )


def release_lease(db: TenantDB, document_id: str, version: int) -> Statement:
    return db.statement(
        "UPDATE document_versions SET lease_until = NULL WHERE tenant_id = ?1 AND document_id = ?2"
        " AND version = ?3 AND status = 'processing'",
        (document_id, version),
    )


def note_retry(db: TenantDB, document_id: str, version: int, error: str) -> Statement:
    """Release the lease of a failed attempt and say why, so the status never shows a bare stall."""
    return db.statement(
        f"UPDATE document_versions SET lease_until = NULL, error = ?4, updated_at = {NOW}"
        " WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3 AND status = 'processing'",
        (document_id, version, error),
    )


def set_version_status(
    db: TenantDB, document_id: str, version: int, status: str, error: str | None = None
) -> Statement:
    return db.statement(
        f"UPDATE document_versions SET status = ?4, error = ?5, lease_until = NULL, updated_at = {NOW}"
        " WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3",
        (document_id, version, status, error),
    )


def promote(db: TenantDB, document_id: str, version: int) -> list[Statement]:
    """The atomic switch: the new version goes live and the old one is superseded, in one batch.

    Guarded so an older version finishing late can never replace a newer live one.
    """
    return [
        bump_corpus_version(db),
        db.statement(
            f"UPDATE document_versions SET status = 'superseded', updated_at = {NOW}"
            " WHERE tenant_id = ?1 AND document_id = ?2 AND status = 'ready' AND version < ?3",
            (document_id, version),
        ),
        db.statement(
            f"UPDATE document_versions SET status = CASE WHEN EXISTS (SELECT 1 FROM documents"
            " WHERE tenant_id = ?1 AND id = ?2 AND live_version > ?3) THEN 'superseded' ELSE 'ready' END,"
            f" lease_until = NULL, error = NULL, updated_at = {NOW}"
            " WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3",
            (document_id, version),
        ),
        db.statement(
            f"UPDATE documents SET live_version = ?3, updated_at = {NOW} WHERE tenant_id = ?1 AND id = ?2"
            " AND (live_version IS NULL OR live_version < ?3)",
            (document_id, version),
        ),
    ]


def pending_versions(now: float, limit: int) -> Statement:
    """Cross-tenant by design: the sweeper finds work, then handles each under its own tenant."""
    return Statement(
        "SELECT tenant_id, document_id, version FROM document_versions"
        " WHERE status IN ('queued', 'processing') AND (lease_until IS NULL OR lease_until < ?1)"
        " ORDER BY updated_at LIMIT ?2",
        (now, limit),
    )


# --- chunks ------------------------------------------------------------------------------
def insert_placements(
    db: TenantDB, document_id: str, version: int, rows: Sequence[ChunkPlacement]
) -> list[Statement]:
    return multi_row_insert(
        db,
        "INSERT INTO version_chunks (tenant_id, document_id, version, position, chunk_id, char_start,"
        " char_end, page, heading_path)",
        [
            (
                document_id,
                version,
                r.position,
                r.chunk_id,
                r.char_start,
                r.char_end,
                r.page,
                json.dumps(r.heading_path, ensure_ascii=False),
            )
            for r in rows
        ],
    )


def insert_pages(
    db: TenantDB, document_id: str, version: int, pages: Sequence[tuple[int, int, int]]
) -> list[Statement]:
    """(page, char_start, char_end) of the version's text: rag reports the page of a quote."""
    return multi_row_insert(
        db,
        "INSERT INTO version_pages (tenant_id, document_id, version, page, char_start, char_end)",
        [(document_id, version, page, start, end) for page, start, end in pages],
    )


def unembedded_chunks(db: TenantDB, document_id: str, version: int, limit: int) -> Statement:
    """Chunks of this version with no `chunks` row yet, i.e. still to embed (resume point)."""
    return db.statement(
        "SELECT vc.chunk_id, MIN(vc.char_start) AS char_start, MIN(vc.char_end) AS char_end"
        " FROM version_chunks vc LEFT JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
        " WHERE vc.tenant_id = ?1 AND vc.document_id = ?2 AND vc.version = ?3 AND c.id IS NULL"
        " GROUP BY vc.chunk_id ORDER BY MIN(vc.position) LIMIT ?4",
        (document_id, version, limit),
    )


def insert_chunks(
    db: TenantDB, document_id: str, rows: Sequence[tuple[str, str, int]]
) -> list[Statement]:
    """(chunk_id, text, tokens) → chunk rows + their FTS rows (in the tenant's rowid range)."""
    statements = multi_row_insert(
        db,
        "INSERT OR IGNORE INTO chunks (tenant_id, id, document_id, text, token_count)",
        [(cid, document_id, text, tokens) for cid, text, tokens in rows],
    )
    base, _ = rowid_range(db.scope)
    ids = [cid for cid, _, _ in rows]
    step = D1_MAX_BOUND_PARAMS - 2
    for start in range(0, len(ids), step):
        part = ids[start : start + step]
        marks = ", ".join(f"?{i + 3}" for i in range(len(part)))
        statements.append(
            db.statement(
                "INSERT INTO chunks_fts (rowid, tenant_id, chunk_id, text)"
                " SELECT ?2 + c.seq, c.tenant_id, c.id, c.text FROM chunks c"
                f" WHERE c.tenant_id = ?1 AND c.id IN ({marks})"
                " AND NOT EXISTS (SELECT 1 FROM chunks_fts f WHERE f.rowid = ?2 + c.seq)",
                (base, *part),
            )
        )
    return statements


def progress(db: TenantDB, document_id: str, version: int) -> Statement:
    return db.statement(
        "SELECT COUNT(DISTINCT vc.chunk_id) AS total, COUNT(DISTINCT c.id) AS done FROM version_chunks vc"
        " LEFT JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
        " WHERE vc.tenant_id = ?1 AND vc.document_id = ?2 AND vc.version = ?3",
        (document_id, version),
    )


def orphan_chunks(db: TenantDB, document_id: str) -> Statement:
    """Chunks of the document that no remaining version places: safe to delete everywhere."""
    return db.statement(
        "SELECT c.id FROM chunks c WHERE c.tenant_id = ?1 AND c.document_id = ?2 AND NOT EXISTS"
        " (SELECT 1 FROM version_chunks vc WHERE vc.tenant_id = ?1 AND vc.chunk_id = c.id)",
        (document_id,),
    )


def chunk_ids_only_in(db: TenantDB, document_id: str, version: int) -> Statement:
    """Chunk ids placed by `version` and by no other version of the document."""
    return db.statement(
        "SELECT DISTINCT vc.chunk_id FROM version_chunks vc WHERE vc.tenant_id = ?1"
        " AND vc.document_id = ?2 AND vc.version = ?3 AND NOT EXISTS (SELECT 1 FROM version_chunks o"
        " WHERE o.tenant_id = ?1 AND o.chunk_id = vc.chunk_id AND o.version <> ?3)",
        (document_id, version),
    )


def delete_placements(db: TenantDB, document_id: str, version: int) -> Statement:
    return db.statement(
        "DELETE FROM version_chunks WHERE tenant_id = ?1 AND document_id = ?2 AND version = ?3",
        (document_id, version),
    )


def delete_chunks(db: TenantDB, chunk_ids: Sequence[str]) -> list[Statement]:
    """FTS rows first (found by rowid through their chunk's seq), then the chunk rows."""
    base, _ = rowid_range(db.scope)
    statements: list[Statement] = []
    step = D1_MAX_BOUND_PARAMS - 2
    for start in range(0, len(chunk_ids), step):
        part = list(chunk_ids[start : start + step])
        marks = ", ".join(f"?{i + 3}" for i in range(len(part)))
        statements.append(
            db.statement(
                "DELETE FROM chunks_fts WHERE rowid IN (SELECT ?2 + seq FROM chunks"
                f" WHERE tenant_id = ?1 AND id IN ({marks}))",
                (base, *part),
            )
        )
        own = ", ".join(f"?{i + 2}" for i in range(len(part)))
        statements.append(
            db.statement(f"DELETE FROM chunks WHERE tenant_id = ?1 AND id IN ({own})", part)
        )
    return statements


def all_chunk_ids(db: TenantDB, document_id: str) -> Statement:
    return db.statement(
        "SELECT id FROM chunks WHERE tenant_id = ?1 AND document_id = ?2"
        " UNION SELECT chunk_id FROM version_chunks WHERE tenant_id = ?1 AND document_id = ?2",
        (document_id,),
    )


def purge_rows(db: TenantDB, document_id: str) -> list[Statement]:
    return [
        bump_corpus_version(db),
        db.statement(
            "DELETE FROM chunks_fts WHERE rowid IN"
            " (SELECT ?3 + seq FROM chunks WHERE tenant_id = ?1 AND document_id = ?2)",
            (document_id, rowid_range(db.scope)[0]),
        ),
        db.statement(
            "DELETE FROM chunks WHERE tenant_id = ?1 AND document_id = ?2", (document_id,)
        ),
        db.statement(
            "DELETE FROM version_chunks WHERE tenant_id = ?1 AND document_id = ?2", (document_id,)
        ),
        db.statement(
            "DELETE FROM version_pages WHERE tenant_id = ?1 AND document_id = ?2", (document_id,)
        ),
        db.statement(
            "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND document_id = ?2", (document_id,)
        ),
        db.statement(
            "DELETE FROM document_versions WHERE tenant_id = ?1 AND document_id = ?2",
            (document_id,),
        ),
        db.statement("DELETE FROM documents WHERE tenant_id = ?1 AND id = ?2", (document_id,)),
    ]


def blob_keys(db: TenantDB, document_id: str) -> Statement:
    """R2 keys of a document, with whether another document still uses the same original."""
    return db.statement(
        "SELECT v.original_key, v.text_key, EXISTS (SELECT 1 FROM document_versions o"
        " WHERE o.tenant_id = ?1 AND o.original_key = v.original_key AND o.document_id <> ?2) AS shared"
        " FROM document_versions v WHERE v.tenant_id = ?1 AND v.document_id = ?2",
        (document_id,),
    )


# --- idempotency and settings ------------------------------------------------------------
def select_idempotency(db: TenantDB, principal_id: str, key: str) -> Statement:
    """Keys are the caller's own: another member of the tenant never sees the same row."""
    return db.statement(
        "SELECT request_hash, document_id, version FROM idempotency_keys"
        " WHERE tenant_id = ?1 AND principal_id = ?2 AND key = ?3",
        (principal_id, key),
    )


def insert_idempotency(
    db: TenantDB, principal_id: str, key: str, request_hash: str, document_id: str, version: int
) -> Statement:
    return db.statement(
        "INSERT INTO idempotency_keys (tenant_id, principal_id, key, request_hash, document_id,"
        " version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (principal_id, key, request_hash, document_id, version),
    )


def select_settings(db: TenantDB) -> Statement:
    return db.statement(
        "SELECT chunk_tokens, chunk_overlap, max_upload_bytes, max_inflated_bytes, max_text_chars,"
        " max_chunks, llm_providers, llm_models, entity_types, intent_labels, translation_provider,"
        " analyzer_url, recording_dimensions FROM tenant_settings"
        " WHERE tenant_id = ?1"
    )


_SETTINGS = (
    "chunk_tokens",
    "chunk_overlap",
    "max_upload_bytes",
    "max_inflated_bytes",
    "max_text_chars",
    "max_chunks",
    "llm_providers",  # JSON arrays (ingest.settings encodes them)
    "llm_models",
    "entity_types",
    "intent_labels",
    "translation_provider",
    "analyzer_url",
    "recording_dimensions",  # JSON array
)


def upsert_settings(db: TenantDB, values: dict[str, object]) -> Statement:
    """Store the tenant's own values (None = the deployment default) for every column."""
    marks = ", ".join(f"?{i + 2}" for i in range(len(_SETTINGS)))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _SETTINGS)
    return db.statement(
        f"INSERT INTO tenant_settings (tenant_id, {', '.join(_SETTINGS)}) VALUES (?1, {marks})"
        f" ON CONFLICT (tenant_id) DO UPDATE SET {updates}, updated_at = {NOW}",
        [values.get(c) for c in _SETTINGS],  # type: ignore[misc]
    )


def bump_corpus_version(db: TenantDB) -> Statement:
    """Rides in the same batch as the change it announces (see tenant_state in the schema)."""
    return db.statement(
        "INSERT INTO tenant_state (tenant_id, corpus_version) VALUES (?1, 1)"
        " ON CONFLICT (tenant_id) DO UPDATE SET corpus_version = corpus_version + 1"
    )
