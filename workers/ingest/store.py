"""SQL for documents and chunks. Building statements is pure (tested by text); TenantDB runs them."""

from __future__ import annotations

from kernel.ports import Statement
from kernel.tenancy import TenantDB

DOCUMENT_COLUMNS = "id, title, source, version, status, content_hash, text_length, chunk_count, created_at, updated_at"


def insert_document(
    db: TenantDB,
    *,
    document_id: str,
    title: str,
    source: str,
    content_hash: str,
    r2_key: str,
    text_length: int,
) -> Statement:
    return db.statement(
        "INSERT INTO documents (tenant_id, id, title, source, version, status, content_hash, r2_key, text_length)"
        " VALUES (?1, ?2, ?3, ?4, 1, 'processing', ?5, ?6, ?7)",
        (document_id, title, source, content_hash, r2_key, text_length),
    )


def insert_chunk(
    db: TenantDB,
    *,
    chunk_id: str,
    document_id: str,
    version: int,
    position: int,
    char_start: int,
    char_end: int,
    text: str,
) -> list[Statement]:
    return [
        db.statement(
            "INSERT OR REPLACE INTO chunks (tenant_id, id, document_id, version, position, char_start, char_end, text)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            (chunk_id, document_id, version, position, char_start, char_end, text),
        ),
        db.statement(
            "INSERT INTO chunks_fts (tenant_id, chunk_id, text) VALUES (?1, ?2, ?3)",
            (chunk_id, text),
        ),
    ]


def mark_ready(db: TenantDB, document_id: str, chunk_count: int) -> Statement:
    return db.statement(
        "UPDATE documents SET status = 'ready', chunk_count = ?3,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE tenant_id = ?1 AND id = ?2",
        (document_id, chunk_count),
    )


def delete_chunks(db: TenantDB, document_id: str) -> list[Statement]:
    return [
        db.statement(
            "DELETE FROM chunks_fts WHERE tenant_id = ?1 AND chunk_id IN"
            " (SELECT id FROM chunks WHERE tenant_id = ?1 AND document_id = ?2)",
            (document_id,),
        ),
        db.statement(
            "DELETE FROM chunks WHERE tenant_id = ?1 AND document_id = ?2", (document_id,)
        ),
    ]


def mark_failed(db: TenantDB, document_id: str) -> Statement:
    return db.statement(
        "UPDATE documents SET status = 'failed', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        " WHERE tenant_id = ?1 AND id = ?2",
        (document_id,),
    )


def select_documents(db: TenantDB, limit: int) -> Statement:
    return db.statement(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = ?1 AND deleted_at IS NULL"
        " ORDER BY created_at DESC, id LIMIT ?2",
        (limit,),
    )


def select_document(db: TenantDB, document_id: str) -> Statement:
    return db.statement(
        f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        (document_id,),
    )
