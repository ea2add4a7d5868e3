"""Text document → R2 original → chunks → embeddings → Vectorize + D1/FTS5, then `ready`.

Readers only see documents whose status is `ready`, so a document becomes searchable in one
D1 batch (its chunk rows + the status flip) after its vectors are in place; on any failure the
vectors written so far are deleted and the document is marked `failed`.
"""

from __future__ import annotations

from ingest import store
from ingest.chunking import chunk_text
from kernel.api import DocumentAccepted
from kernel.env import Bindings
from kernel.ids import chunk_id, new_id, sha256_hex
from kernel.inference import embed
from kernel.logs import log
from kernel.ports import VECTORIZE_MAX_UPSERT, Statement, Vector
from kernel.tenancy import TenantDB, TenantScope

D1_STATEMENTS_PER_BATCH = 200


async def ingest_text(
    b: Bindings, scope: TenantScope, *, title: str, text: str, request_id: str
) -> DocumentAccepted:
    db = TenantDB(b.need(b.db, "DB"), scope)
    blobs = b.need(b.blobs, "R2")
    vectors = b.need(b.vectors, "VECTORIZE")
    ai = b.need(b.ai, "AI")

    original = text.encode("utf-8")
    content_hash = sha256_hex(original)
    document_id = new_id("d")
    version = 1
    r2_key = scope.r2_key("originals", content_hash)
    await blobs.put(
        r2_key,
        original,
        content_type="text/plain; charset=utf-8",
        custom_metadata={"sha256": content_hash},
    )

    chunks = chunk_text(text)
    await db.run(
        store.insert_document(
            db,
            document_id=document_id,
            title=title,
            source="text",
            content_hash=content_hash,
            r2_key=r2_key,
            text_length=len(text),
        )
    )
    ids = [chunk_id(scope.tenant_id, document_id, c.position, c.text) for c in chunks]
    written: list[str] = []
    try:
        embeddings = await embed(ai, [c.text for c in chunks])
        batch: list[Vector] = []
        for cid, values in zip(ids, embeddings, strict=True):
            batch.append(
                Vector(
                    cid,
                    values,
                    namespace=scope.namespace,
                    metadata={"document_id": document_id, "version": version},
                )
            )
        for start in range(0, len(batch), VECTORIZE_MAX_UPSERT):
            part = batch[start : start + VECTORIZE_MAX_UPSERT]
            await vectors.upsert(part)
            written.extend(v.id for v in part)

        statements: list[Statement] = []
        for cid, c in zip(ids, chunks, strict=True):
            statements.extend(
                store.insert_chunk(
                    db,
                    chunk_id=cid,
                    document_id=document_id,
                    version=version,
                    position=c.position,
                    char_start=c.char_start,
                    char_end=c.char_end,
                    text=c.text,
                )
            )
        # Chunk rows may span several batches; the status flip rides in the last one, so the
        # document turns searchable atomically.
        statements.append(store.mark_ready(db, document_id, len(chunks)))
        for start in range(0, len(statements), D1_STATEMENTS_PER_BATCH):
            await db.batch(statements[start : start + D1_STATEMENTS_PER_BATCH])
    except Exception:
        log(
            "ingest_failed",
            level="error",
            request_id=request_id,
            tenant=scope.tenant_id,
            document_id=document_id,
        )
        if written:
            await vectors.delete_by_ids(written)
        await db.batch([*store.delete_chunks(db, document_id), store.mark_failed(db, document_id)])
        raise
    log(
        "ingested",
        request_id=request_id,
        tenant=scope.tenant_id,
        document_id=document_id,
        chunks=len(chunks),
    )
    return DocumentAccepted(
        document_id=document_id, version=version, status="ready", chunks=len(chunks)
    )
