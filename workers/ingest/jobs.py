"""Ingestion as a resumable job.

`accept` does everything that can fail because of the input *before* anything is written
(extract, chunk, plan), then writes the original and extracted text to R2 and the version with
its chunk placements to D1 in one batch, and returns `queued`.

`process` embeds what is missing — a chunk that already has a `chunks` row (unchanged since an
earlier version) is never embedded again — in slices of ≤100 texts (AI limit), upserting vectors
before their D1 rows so a crash can only leave work to redo, never a row without a vector. It
holds a lease on the version; when its time slice is used up it hands over to a follow-up
invocation, and a crashed job is picked up by the sweeper once its lease expires. The switch to a
new version is one D1 batch (`store.promote`), so readers see the old version or the new one,
never both and never neither. Failure removes everything only the failed version referenced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ingest import store
from ingest.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS, chunk_text
from ingest.extract import DocumentTooLarge, Extracted, Limits, extract
from ingest.uploads import Upload
from kernel.bindings.env import Bindings
from kernel.bindings.inference import embed
from kernel.bindings.ports import (
    AI_MAX_EMBED_BATCH,
    BindingError,
    BindingLimitError,
    ConstraintViolation,
    Database,
    Statement,
    Vector,
)
from kernel.contracts.api import MAX_TITLE_CHARS, as_label
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.domain.wordpiece import count_tokens
from kernel.runtime.errors import ApiError, Conflict, NotFound, ValidationFailed
from kernel.runtime.ids import chunk_id, sha256_hex
from kernel.runtime.logs import log

LEASE_SECONDS = 60.0
MAX_ATTEMPTS = 3
DEFAULT_SLICE_SECONDS = 20.0

Continue = Callable[[str, int], Awaitable[None]]


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
    limits: Limits = field(default_factory=Limits)


def plan_placements(
    scope: TenantScope, document_id: str, extracted: Extracted, settings: ChunkSettings
) -> tuple[list[store.ChunkPlacement], dict[str, int]]:
    chunks = chunk_text(extracted.text, settings.max_tokens, settings.overlap_tokens)
    seen: dict[str, int] = {}
    placements: list[store.ChunkPlacement] = []
    tokens: dict[str, int] = {}
    for chunk in chunks:
        occurrence = seen.get(chunk.text, 0)
        seen[chunk.text] = occurrence + 1
        cid = chunk_id(scope.tenant_id, document_id, chunk.text, occurrence)
        tokens[cid] = chunk.tokens
        placements.append(
            store.ChunkPlacement(
                position=chunk.position,
                chunk_id=cid,
                char_start=chunk.char_start,
                char_end=chunk.char_end,
                page=extracted.page_at(chunk.char_start),
                heading_path=extracted.heading_path(chunk.char_start),
            )
        )
    return placements, tokens


def changed_labels(doc: dict[str, Any], upload: Upload) -> store.DocumentLabels:
    """What a PUT changes at document level: only fields it sent, and only if they differ.

    Visibility is refused rather than dropped: every stored vector carries it (search filters
    on it in Vectorize), so it cannot change by rewriting the document row.
    """
    if "visibility" in upload.given and upload.visibility != doc["visibility"]:
        raise ValidationFailed(
            f"visibility: a PUT cannot change it (the document is {doc['visibility']!r});"
            " upload a new document with the visibility you want, then delete this one"
        )
    tags = upload.tags if "tags" in upload.given else None
    metadata = upload.metadata if "metadata" in upload.given else None
    return store.DocumentLabels(
        title=upload.title if upload.title not in (None, doc["title"]) else None,
        tags=tags if tags is not None and tags != json.loads(doc["tags"] or "[]") else None,
        metadata=(
            metadata
            if metadata is not None and metadata != json.loads(doc["metadata"] or "{}")
            else None
        ),
    )


def request_fingerprint(upload: Upload, content_hash: str) -> str:
    return sha256_hex(
        json.dumps(
            [
                content_hash,
                upload.title,
                upload.visibility,
                upload.tags,
                upload.metadata,
                upload.filename,
                upload.source_url,
            ],
            sort_keys=True,
        )
    )


async def _first(db: TenantDB, statement: Statement) -> dict[str, Any] | None:
    rows = (await db.run(statement)).rows
    return rows[0] if rows else None


async def replay_idempotent(
    db: TenantDB, principal_id: str, key: str, fingerprint: str
) -> dict[str, Any] | None:
    row = await _first(db, store.select_idempotency(db, principal_id, key))
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request; use a new key",
            code="idempotency_key_reused",
        )
    version = await _first(db, store.select_version(db, row["document_id"], int(row["version"])))
    return {
        "document_id": row["document_id"],
        "version": int(row["version"]),
        "status": version["status"] if version else "deleted",
        "replayed": True,
    }


async def accept(
    b: Bindings,
    scope: TenantScope,
    upload: Upload,
    *,
    document_id: str,
    new_document: bool,
    owner_id: str | None,
    settings: ChunkSettings,
    idempotency_key: str | None,
) -> tuple[int, dict[str, Any]]:
    """Validate and store a new document or version. Returns (status, body); schedules nothing."""
    db = TenantDB(b.need(b.db, "DB"), scope)
    blobs = b.need(b.blobs, "R2")
    content_hash = sha256_hex(upload.data)
    fingerprint = request_fingerprint(upload, content_hash)
    if idempotency_key:
        replay = await replay_idempotent(db, owner_id or "", idempotency_key, fingerprint)
        if replay is not None:
            return 200, replay

    version = 1
    labels = store.DocumentLabels()
    if not new_document:
        doc = await _first(db, store.select_document(db, document_id))
        if doc is None:
            raise NotFound(f"document {document_id} not found")
        labels = changed_labels(doc, upload)
        latest = await _first(db, store.select_version(db, document_id, int(doc["latest_version"])))
        if latest and latest["content_hash"] == content_hash and latest["status"] != "failed":
            # Same content: nothing is extracted or embedded; changed labels are applied in place.
            if labels:
                await db.batch(
                    [store.update_labels(db, document_id, labels), store.bump_corpus_version(db)]
                )
            return 200, {
                "document_id": document_id,
                "version": int(latest["version"]),
                "status": latest["status"],
                "unchanged": True,
            }
        version = int(doc["latest_version"]) + 1

    kind, extracted = extract(upload.data, upload.content_type, upload.filename, settings.limits)
    placements, _ = plan_placements(scope, document_id, extracted, settings)
    if not placements:
        raise ValidationFailed("the document has no text to index", code="unprocessable_document")
    most = settings.limits.max_chunks
    if len(placements) > most:
        raise DocumentTooLarge(
            f"the document makes {len(placements):,} chunks (limit max_chunks = {most});"
            " split it into smaller files or raise chunk_tokens"
        )

    original_key = scope.r2_key("originals", content_hash)
    text_key = scope.r2_key("texts", document_id, f"v{version}.json")
    created_original = await blobs.head(original_key) is None
    if created_original:
        await blobs.put(
            original_key,
            upload.data,
            content_type=upload.content_type or "application/octet-stream",
            custom_metadata={"sha256": content_hash},
        )
    await blobs.put(text_key, encode_text(extracted), content_type="application/json")

    row = store.VersionRow(
        document_id=document_id,
        version=version,
        status="queued",
        kind=kind,
        content_type=upload.content_type,
        filename=upload.filename,
        source_url=upload.source_url,
        content_hash=content_hash,
        original_key=original_key,
        text_key=text_key,
        size_bytes=len(upload.data),
        text_length=len(extracted.text),
        page_count=len(extracted.pages) or None,
        chunk_count=len(placements),
    )
    title = (
        upload.title
        or as_label(extracted.title, MAX_TITLE_CHARS)
        or as_label(upload.source_url, MAX_TITLE_CHARS)
        or upload.filename
        or "Untitled"
    )
    statements: list[Statement] = []
    if new_document:
        statements.append(
            store.insert_document(
                db,
                document_id=document_id,
                title=title,
                visibility=upload.visibility,
                owner_id=owner_id,
                tags=upload.tags,
                metadata=upload.metadata,
            )
        )
    else:
        statements.append(store.bump_latest_version(db, document_id, version, labels))
    statements.append(store.insert_version(db, row))
    statements += store.insert_placements(db, document_id, version, placements)
    statements += store.insert_pages(
        db, document_id, version, [(p.number, p.char_start, p.char_end) for p in extracted.pages]
    )
    if idempotency_key:
        statements.append(
            store.insert_idempotency(
                db, owner_id or "", idempotency_key, fingerprint, document_id, version
            )
        )
    try:
        await db.batch(statements)
    except BindingError as exc:
        # Nothing half-written: D1 rolled the batch back; remove what this request put in R2.
        await blobs.delete([text_key, *([original_key] if created_original else [])])
        if isinstance(exc, ConstraintViolation):  # another version took this number first
            raise Conflict(
                "another upload for this document is in flight; retry", code="version_conflict"
            ) from exc
        raise
    return 202, {"document_id": document_id, "version": version, "status": "queued"}


def encode_text(extracted: Extracted) -> bytes:
    return json.dumps(
        {
            "text": extracted.text,
            "title": extracted.title,
            "pages": [[p.number, p.char_start, p.char_end] for p in extracted.pages],
            "headings": [[h.char_start, h.level, h.title] for h in extracted.headings],
        },
        ensure_ascii=False,
    ).encode("utf-8")


async def load_text(b: Bindings, text_key: str) -> str:
    return str((await load_extracted(b, text_key))["text"])


async def load_extracted(b: Bindings, text_key: str) -> dict[str, Any]:
    """The stored extraction: text, title, pages [[n, start, end]], headings [[start, level,
    title]] (encode_text)."""
    blob = await b.need(b.blobs, "R2").get(text_key)
    if blob is None:
        raise ApiError(f"extracted text {text_key} is missing from R2")
    stored: dict[str, Any] = json.loads(blob.data)
    stored["pages"] = [tuple(p) for p in stored.get("pages", [])]
    stored["headings"] = [tuple(h) for h in stored.get("headings", [])]
    return stored


async def process(
    b: Bindings,
    scope: TenantScope,
    document_id: str,
    version: int,
    *,
    slice_seconds: float = DEFAULT_SLICE_SECONDS,
    hand_over: Continue | None = None,
    request_id: str = "",
) -> str:
    """Advance one version as far as this invocation may. Returns the outcome for logs/tests."""
    db = TenantDB(b.need(b.db, "DB"), scope)
    started = time.monotonic()
    claim = await db.run(store.claim_version(db, document_id, version, time.time(), LEASE_SECONDS))
    if claim.changes != 1:
        return "not_claimed"  # finished, failed, or another invocation holds the lease
    attempts = 1
    try:  # from here on, every failure ends in `failed` or a recorded retry (never a stall)
        row = await _first(db, store.select_version(db, document_id, version))
        assert row is not None, f"version {version} of {document_id} vanished"
        attempts = int(row["attempts"])  # claim_version counted this attempt
        doc = await _first(db, store.select_document(db, document_id, include_deleted=True))
        # visibility and owner_id: the search filters on them in Vectorize (rag/filters.py).
        vector_metadata = {
            "document_id": document_id,
            "visibility": str(doc["visibility"]) if doc else "private",
            "owner_id": str(doc["owner_id"] or "") if doc else "",
        }
        text: str | None = None
        while True:
            missing = (
                await db.run(store.unembedded_chunks(db, document_id, version, AI_MAX_EMBED_BATCH))
            ).rows
            if not missing:
                break
            if text is None:
                text = await load_text(b, str(row["text_key"]))
            texts = [text[int(r["char_start"]) : int(r["char_end"])] for r in missing]
            vectors = await embed(b.need(b.ai, "AI"), texts)
            await b.need(b.vectors, "VECTORIZE").upsert(
                [
                    Vector(
                        str(r["chunk_id"]),
                        v,
                        namespace=scope.namespace,
                        metadata=vector_metadata,
                    )
                    for r, v in zip(missing, vectors, strict=True)
                ]
            )
            rows = [
                (str(r["chunk_id"]), t, count_tokens(t))
                for r, t in zip(missing, texts, strict=True)
            ]
            await db.batch(
                [
                    *store.insert_chunks(db, document_id, rows),
                    store.renew_lease(db, document_id, version, time.time() + LEASE_SECONDS),
                ]
            )
            if hand_over is not None and time.monotonic() - started > slice_seconds:
                await db.run(store.release_lease(db, document_id, version))
                await hand_over(document_id, version)
                log(
                    "ingest_handed_over",
                    request_id=request_id,
                    tenant=scope.tenant_id,
                    document_id=document_id,
                )
                return "handed_over"
        await db.batch(store.promote(db, document_id, version))
        await collect_garbage(b, db, document_id)
        log(
            "ingest_ready",
            request_id=request_id,
            tenant=scope.tenant_id,
            document_id=document_id,
            version=version,
        )
        return "ready"
    except Exception as exc:
        reason = failure_reason(exc)
        permanent = is_permanent(exc)
        log(
            "ingest_error",
            level="error",
            request_id=request_id,
            tenant=scope.tenant_id,
            document_id=document_id,
            version=version,
            attempt=attempts,
            permanent=permanent,
            error=reason[:300],
        )
        if permanent or attempts >= MAX_ATTEMPTS:
            tried = "" if permanent else f" (tried {attempts} times)"
            await fail(
                b,
                db,
                document_id,
                version,
                f"processing failed{tried}: {reason[:400]}. Nothing of this version was kept;"
                " upload the document again to retry.",
            )
            return "failed"
        # The sweeper (cron) retries; until then the status says what went wrong.
        await db.run(
            store.note_retry(
                db,
                document_id,
                version,
                f"attempt {attempts} of {MAX_ATTEMPTS} failed: {reason[:400]}; retrying"
                " automatically in a few minutes",
            )
        )
        return "retry"


# Failures that the same input will hit again: retrying them only delays the answer.
_PERMANENT = (
    BindingLimitError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    AssertionError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    return chain


def is_permanent(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, ApiError):
            if cause.status < 500:
                return True
        elif isinstance(cause, _PERMANENT):
            return True
    return False


def failure_reason(exc: BaseException) -> str:
    """What a person reads in the status: the platform's own words, not a traceback."""
    if isinstance(exc, ApiError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def fail(b: Bindings, db: TenantDB, document_id: str, version: int, reason: str) -> None:
    only_here = [
        str(r["chunk_id"])
        for r in (await db.run(store.chunk_ids_only_in(db, document_id, version))).rows
    ]
    if only_here:
        await b.need(b.vectors, "VECTORIZE").delete_by_ids(only_here)
    await db.batch(
        [
            store.set_version_status(db, document_id, version, "failed", reason),
            store.delete_placements(db, document_id, version),
            *store.delete_chunks(db, only_here),
        ]
    )


async def collect_garbage(b: Bindings, db: TenantDB, document_id: str) -> None:
    """After a switch: drop superseded placements and every chunk no version still uses."""
    versions = (await db.run(store.select_versions(db, document_id))).rows
    stale = [int(v["version"]) for v in versions if v["status"] == "superseded"]
    if stale:
        await db.batch([store.delete_placements(db, document_id, v) for v in stale])
    orphans = [str(r["id"]) for r in (await db.run(store.orphan_chunks(db, document_id))).rows]
    if orphans:
        await b.need(b.vectors, "VECTORIZE").delete_by_ids(orphans)
        await db.batch(store.delete_chunks(db, orphans))


async def purge(b: Bindings, scope: TenantScope, document_id: str) -> None:
    """Remove a document everywhere: vectors, FTS and chunk rows, versions, R2 objects."""
    db = TenantDB(b.need(b.db, "DB"), scope)
    ids = [str(r["id"]) for r in (await db.run(store.all_chunk_ids(db, document_id))).rows]
    keys = (await db.run(store.blob_keys(db, document_id))).rows
    for start in range(0, len(ids), 1000):
        await b.need(b.vectors, "VECTORIZE").delete_by_ids(ids[start : start + 1000])
    await db.batch(store.purge_rows(db, document_id))
    doomed = {str(k["text_key"]) for k in keys} | {
        str(k["original_key"]) for k in keys if not k["shared"]
    }
    if doomed:
        await b.need(b.blobs, "R2").delete(sorted(doomed))


async def release_orphaned_leases(db: Database) -> int:
    """Release every lease a processing job holds, so the next sweep resumes it at once.

    Only a host that knows every holder is gone may call this: the emulator's dev server at
    start, which holds its data directory exclusively, so every lease it finds belonged to a
    process that died. Cloudflare never can know that (isolates of one Worker run concurrently
    anywhere), so there a lease only expires (LEASE_SECONDS after its last renewal) and the
    cron sweep picks the job up then. See docs/decisions.md.
    """
    result = await db.execute(
        "UPDATE document_versions SET lease_until = NULL"
        " WHERE status = 'processing' AND lease_until IS NOT NULL"
    )
    return result.changes
