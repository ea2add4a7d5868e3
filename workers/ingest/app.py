"""Ingest Worker routes (reachable only from the gateway and itself, over service bindings)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import BaseModel

from ingest import jobs, store
from ingest.uploads import read_upload
from kernel.api import TenantSettings
from kernel.app import WorkerApp
from kernel.env import Bindings, resolve
from kernel.errors import BadRequest, NotFound, ValidationFailed
from kernel.http import Request, Response, json_response
from kernel.ids import new_id
from kernel.internal import add_internal_routes
from kernel.logs import log
from kernel.ports import Statement
from kernel.router import Router
from kernel.services import PRINCIPAL_HEADER, call
from kernel.tenancy import TenantDB, TenantScope, scope_from_request

_DOCUMENT_ID = re.compile(r"^d_[0-9a-f]{24}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
SWEEP_BATCH = 20


class JobRef(BaseModel):
    document_id: str
    version: int


def _document_id(request: Request) -> str:
    document_id = request.params["document_id"]
    if not _DOCUMENT_ID.match(document_id):
        # Same answer as for another tenant's id: ids are not probeable.
        raise NotFound(f"document {document_id} not found")
    return document_id


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("tags", "metadata"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


class Ingest:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings
        self.slice_seconds = float(
            bindings.var("EDGERAG_INGEST_SLICE_SECONDS") or jobs.DEFAULT_SLICE_SECONDS
        )

    async def _settings(self, db: TenantDB) -> tuple[jobs.ChunkSettings, int]:
        rows = (await db.run(store.select_settings(db))).rows
        row = rows[0] if rows else {}
        default_max = int(self.b.var("EDGERAG_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES)
        tokens, overlap = row.get("chunk_tokens"), row.get("chunk_overlap")
        settings = jobs.ChunkSettings(
            max_tokens=jobs.DEFAULT_MAX_TOKENS if tokens is None else int(tokens),
            overlap_tokens=jobs.DEFAULT_OVERLAP_TOKENS if overlap is None else int(overlap),
        )
        upload_limit = row.get("max_upload_bytes")
        return settings, default_max if upload_limit is None else min(
            int(upload_limit), default_max
        )

    async def get_settings(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        settings, max_bytes = await self._settings(db)
        return json_response(
            {
                "chunk_tokens": settings.max_tokens,
                "chunk_overlap": settings.overlap_tokens,
                "max_upload_bytes": max_bytes,
            }
        )

    async def update_settings(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        current, max_bytes = await self._settings(db)
        change = request.model(TenantSettings)
        tokens = change.chunk_tokens if change.chunk_tokens is not None else current.max_tokens
        overlap = (
            change.chunk_overlap if change.chunk_overlap is not None else current.overlap_tokens
        )
        if overlap >= tokens:
            raise ValidationFailed("chunk_overlap: must be smaller than chunk_tokens")
        ceiling = int(self.b.var("EDGERAG_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES)
        if change.max_upload_bytes is not None and change.max_upload_bytes > ceiling:
            raise ValidationFailed(f"max_upload_bytes: this deployment allows at most {ceiling}")
        await db.run(
            store.upsert_settings(db, tokens, overlap, change.max_upload_bytes or max_bytes)
        )
        return await self.get_settings(request)

    # --- writes --------------------------------------------------------------------------
    async def _accept(self, request: Request, document_id: str, new_document: bool) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        settings, max_bytes = await self._settings(db)
        key = request.header("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise BadRequest("Idempotency-Key must be 1-255 visible ASCII characters")
        upload = await read_upload(request, max_bytes=max_bytes, outbound=self.b.outbound)
        status, body = await jobs.accept(
            self.b,
            scope,
            upload,
            document_id=document_id,
            new_document=new_document,
            owner_id=request.header(PRINCIPAL_HEADER),
            settings=settings,
            idempotency_key=key,
        )
        if status == 202:
            self._schedule(request, scope, body["document_id"], body["version"])
        return json_response(body, status)

    async def create(self, request: Request) -> Response:
        return await self._accept(request, new_id("d"), new_document=True)

    async def replace(self, request: Request) -> Response:
        return await self._accept(request, _document_id(request), new_document=False)

    def _schedule(
        self, request: Request, scope: TenantScope, document_id: str, version: int
    ) -> None:
        async def hand_over(doc: str, ver: int) -> None:
            await call(
                self.b.service("SELF"),
                "POST",
                "/internal/ingest/continue",
                request_id=request.request_id,
                tenant_id=scope.tenant_id,
                payload={"document_id": doc, "version": ver},
            )

        async def run() -> None:
            try:
                await jobs.process(
                    self.b,
                    scope,
                    document_id,
                    version,
                    slice_seconds=self.slice_seconds,
                    hand_over=hand_over if "SELF" in self.b.services else None,
                    request_id=request.request_id,
                )
            except Exception as exc:  # background work must log, never crash the isolate
                log(
                    "ingest_background_error",
                    level="error",
                    request_id=request.request_id,
                    error=repr(exc)[:300],
                )

        if request.wait_until is not None:
            request.wait_until(run())

    async def continue_job(self, request: Request) -> Response:
        ref = request.model(JobRef)
        self._schedule(request, scope_from_request(request), ref.document_id, ref.version)
        return json_response({"scheduled": True}, 202)

    async def sweep(self, request: Request) -> Response:
        """Resume jobs whose lease expired (a crash or restart mid-document). Cron-driven."""
        db = self.b.need(self.b.db, "DB")
        stmt: Statement = store.pending_versions(time.time(), SWEEP_BATCH)
        rows = (await db.execute(stmt.sql, stmt.params)).rows
        for row in rows:
            self._schedule(
                request,
                TenantScope(str(row["tenant_id"])),
                str(row["document_id"]),
                int(row["version"]),
            )
        return json_response({"resumed": len(rows)})

    async def delete(self, request: Request) -> Response:
        scope = scope_from_request(request)
        document_id = _document_id(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        doc = (await db.run(store.select_document(db, document_id, include_deleted=True))).rows
        if not doc:
            raise NotFound(f"document {document_id} not found")
        if request.query.get("purge") in ("true", "1"):
            await jobs.purge(self.b, scope, document_id)
            return json_response({"document_id": document_id, "purged": True})
        await db.batch([store.set_deleted(db, document_id, True), store.bump_corpus_version(db)])
        return json_response({"document_id": document_id, "deleted": True})

    async def restore(self, request: Request) -> Response:
        scope = scope_from_request(request)
        document_id = _document_id(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        result, _ = await db.batch(
            [store.set_deleted(db, document_id, False), store.bump_corpus_version(db)]
        )
        if result.changes != 1:
            raise NotFound(f"document {document_id} is not deleted (or does not exist)")
        return json_response({"document_id": document_id, "deleted": False})

    # --- reads ---------------------------------------------------------------------------
    async def list(self, request: Request) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        try:
            limit = min(max(int(request.query.get("limit", "100")), 1), 500)
        except ValueError as exc:
            raise BadRequest("limit must be an integer") from exc
        rows = (
            await db.run(
                store.select_documents(db, limit + 1, request.query.get("after"), scope.viewer)
            )
        ).rows
        documents = [_decode(r) for r in rows[:limit]]
        cursor = documents[-1]["id"] if len(rows) > limit else None
        return json_response({"documents": documents, "next_cursor": cursor})

    async def get(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        document_id = _document_id(request)
        rows = (await db.run(store.select_document(db, document_id))).rows
        if not rows:
            raise NotFound(f"document {document_id} not found")
        doc = _decode(rows[0])
        versions = (await db.run(store.select_versions(db, document_id))).rows
        live = next((v for v in versions if v["version"] == doc["live_version"]), None)
        latest = versions[-1] if versions else None
        current = live or latest or {}
        doc.update(
            status=latest["status"] if latest else None,
            content_hash=current.get("content_hash"),
            size_bytes=current.get("size_bytes"),
            page_count=current.get("page_count"),
            chunk_count=current.get("chunk_count"),
            versions=versions,
        )
        return json_response(doc)

    async def status(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        document_id = _document_id(request)
        rows = (await db.run(store.select_document(db, document_id))).rows
        if not rows:
            raise NotFound(f"document {document_id} not found")
        version = int(rows[0]["latest_version"])
        row = (await db.run(store.select_version(db, document_id, version))).rows[0]
        counts = (await db.run(store.progress(db, document_id, version))).rows[0]
        total = (
            int(row["chunk_count"])
            if row["status"] in ("ready", "superseded")
            else int(counts["total"] or 0)
        )
        done = total if row["status"] in ("ready", "superseded") else int(counts["done"] or 0)
        return json_response(
            {
                "document_id": document_id,
                "version": version,
                "live_version": rows[0]["live_version"],
                "status": row["status"],
                "progress": {"done": done, "total": total},
                "error": row["error"],
            }
        )


def build_app(raw_env: Any) -> WorkerApp:
    ingest = Ingest(bindings := resolve("ingest", raw_env, {"SELF": "ingest"}, outbound=True))
    router = Router()
    router.add("POST", "/documents", ingest.create)
    router.add("GET", "/documents", ingest.list)
    router.add("GET", "/documents/{document_id}", ingest.get)
    router.add("PUT", "/documents/{document_id}", ingest.replace)
    router.add("DELETE", "/documents/{document_id}", ingest.delete)
    router.add("POST", "/documents/{document_id}/restore", ingest.restore)
    router.add("GET", "/documents/{document_id}/status", ingest.status)
    router.add("GET", "/settings", ingest.get_settings)
    router.add("PATCH", "/settings", ingest.update_settings)
    router.add("POST", "/internal/ingest/continue", ingest.continue_job)
    router.add("POST", "/internal/ingest/sweep", ingest.sweep)
    add_internal_routes(router, bindings)
    return WorkerApp("ingest", router)
