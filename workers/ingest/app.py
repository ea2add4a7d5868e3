"""Ingest Worker routes (reachable only from the gateway and itself, over service bindings)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from ingest import direct, jobs, sections, store
from ingest.access import WRITERS, authorize
from ingest.project_routes import AnnotationRoutes, ProjectRoutes
from ingest.recording_routes import RecordingRoutes
from ingest.settings import IngestSettings, apply_change, effective
from ingest.uploads import Upload, read_upload
from kernel.bindings.env import Bindings, resolve
from kernel.bindings.health import add_internal_routes
from kernel.bindings.ports import Statement
from kernel.bindings.services import PRINCIPAL_HEADER, call
from kernel.contracts.api import CreateUpload
from kernel.contracts.ingest import (
    DocumentAccepted,
    DocumentDeleted,
    DocumentDetail,
    DocumentList,
    DocumentPatch,
    DocumentRestored,
    DocumentSections,
    DocumentStatus,
    EffectiveSettings,
    JobRef,
    JobScheduled,
    Progress,
    SweepResult,
    TenantSettings,
)
from kernel.contracts.mcp import MAX_RESOURCE_CHARS
from kernel.domain.paging import only_params, page_params
from kernel.domain.tenancy import TenantDB, TenantScope, scope_from_request, tenant_db
from kernel.runtime.app import WorkerApp
from kernel.runtime.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.ids import new_id, new_request_id
from kernel.runtime.logs import log
from kernel.runtime.platform import background
from kernel.runtime.router import Router

_DOCUMENT_ID = re.compile(r"^d_[0-9a-f]{24}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
SWEEP_BATCH = 20


def _document_id(request: Request) -> str:
    document_id = request.params["document_id"]
    if not _DOCUMENT_ID.match(document_id):
        # Same answer as for another tenant's id: ids are not probeable.
        raise NotFound(f"document {document_id} not found")
    return document_id


def _int_param(query: dict[str, str], name: str, low: int, high: int) -> int:
    raw = query[name]
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValidationFailed(
            f"{name}: must be an integer from {low} to {high}",
            details={"fields": [{"field": name, "message": f"an integer from {low} to {high}"}]},
        )
    return int(raw)


def _char_span(query: dict[str, str], pages: sections.Pages, length: int) -> sections.Section:
    """`?char_start=&char_end=`: characters [start, end) of the text, both given, end > start;
    an end past the text reads to its end (a citation's span widened by context)."""
    for name in ("char_start", "char_end"):
        if name not in query:
            raise ValidationFailed(
                f"{name}: required with char_start/char_end",
                details={"fields": [{"field": name, "message": "required"}]},
            )
    start = _int_param(query, "char_start", 0, max(0, length - 1))
    end = _int_param(query, "char_end", start + 1, 1_000_000_000)
    return sections.by_chars(pages, start, min(end, max(length, start + 1)))


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

    async def settings_for(self, db: TenantDB) -> tuple[dict[str, Any], IngestSettings]:
        rows = (await db.run(store.select_settings(db))).rows
        row = dict(rows[0]) if rows else {}
        return row, effective(self.b, row)

    async def get_settings(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        _, current = await self.settings_for(db)
        return json_response(EffectiveSettings.model_validate(current.public()).model_dump())

    async def update_settings(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        row, _ = await self.settings_for(db)
        new = apply_change(self.b, row, request.model(TenantSettings))
        # Cached answers embed the corpus version: a new provider narrowing must not be
        # answered from what another provider wrote.
        await db.batch([store.upsert_settings(db, new), store.bump_corpus_version(db)])
        return await self.get_settings(request)

    # --- writes --------------------------------------------------------------------------
    async def _accept(self, request: Request, document_id: str, new_document: bool) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        if not new_document:  # before reading a byte of the upload
            await authorize(db, scope.viewer, document_id, write=True)
        _, current = await self.settings_for(db)
        _idempotency_key(request)  # a bad key is refused before anything is fetched
        owner = request.header(PRINCIPAL_HEADER) or ""

        async def from_upload(upload_id: str, max_bytes: int) -> tuple[bytes, str, str]:
            return await direct.read_confirmed(self.b, db, owner, upload_id, max_bytes)

        upload = await read_upload(
            request,
            max_bytes=current.max_upload_bytes,
            outbound=self.b.outbound,
            replacing=not new_document,
            from_upload=from_upload,
        )
        return await self.accept_upload(request, db, upload, document_id, new_document)

    async def accept_upload(
        self, request: Request, db: TenantDB, upload: Upload, document_id: str, new_document: bool
    ) -> Response:
        """Queue `upload` as a new document (or version) and schedule its ingestion job."""
        scope = db.scope
        _, current = await self.settings_for(db)
        key = _idempotency_key(request)
        status, body = await jobs.accept(
            self.b,
            scope,
            upload,
            document_id=document_id,
            new_document=new_document,
            owner_id=request.header(PRINCIPAL_HEADER),
            settings=jobs.ChunkSettings(
                current.chunk_tokens, current.chunk_overlap, limits=current.limits
            ),
            idempotency_key=key,
        )
        accepted = DocumentAccepted.model_validate(body)
        if status == 202:
            self._schedule(request, scope, accepted.document_id, accepted.version)
        # Defaults left out: `unchanged`/`replayed` appear only when they are true.
        return json_response(accepted.model_dump(exclude_defaults=True), status)

    async def create(self, request: Request) -> Response:
        return await self._accept(request, new_id("d"), new_document=True)

    async def replace(self, request: Request) -> Response:
        return await self._accept(request, _document_id(request), new_document=False)

    def _schedule(
        self, request: Request, scope: TenantScope, document_id: str, version: int
    ) -> None:
        self._run_job(request.request_id, request.wait_until, scope, document_id, version)

    async def _continue_elsewhere(
        self, request_id: str, scope: TenantScope, document_id: str, version: int
    ) -> int:
        """Run the job in a fresh invocation of this Worker (its own time and limits)."""
        response = await call(
            self.b.service("SELF"),
            "POST",
            "/internal/ingest/continue",
            request_id=request_id,
            tenant_id=scope.tenant_id,
            payload={"document_id": document_id, "version": version},
        )
        return response.status

    def _run_job(
        self,
        request_id: str,
        wait_until: Callable[[Any], None] | None,
        scope: TenantScope,
        document_id: str,
        version: int,
    ) -> None:
        async def hand_over(doc: str, ver: int) -> None:
            await self._continue_elsewhere(request_id, scope, doc, ver)

        async def run() -> None:
            try:
                await jobs.process(
                    self.b,
                    scope,
                    document_id,
                    version,
                    slice_seconds=self.slice_seconds,
                    hand_over=hand_over if "SELF" in self.b.services else None,
                    request_id=request_id,
                )
            except Exception as exc:  # background work must log, never crash the isolate
                log(
                    "ingest_background_error",
                    level="error",
                    request_id=request_id,
                    error=repr(exc)[:300],
                )

        if wait_until is not None:
            wait_until(run())

    async def continue_job(self, request: Request) -> Response:
        ref = request.model(JobRef)
        self._schedule(request, scope_from_request(request), ref.document_id, ref.version)
        return json_response(JobScheduled(scheduled=True).model_dump(), 202)

    async def sweep(self, request: Request) -> Response:
        """The cron's work on demand (operators, tests): see `sweep_pending`."""
        resumed = await self.sweep_pending(request.request_id, request.wait_until)
        return json_response(SweepResult(resumed=resumed).model_dump())

    async def sweep_pending(
        self, request_id: str, wait_until: Callable[[Any], None] | None, *, cron: str = ""
    ) -> int:
        """Resume jobs nobody holds: queued ones whose first run never started (an evicted
        isolate) and processing ones whose lease expired or was released (crash, retry).
        Each goes to its own invocation through SELF, so one sweep's budget is not shared by
        twenty documents. Run by the cron trigger (entry.py `scheduled`)."""
        db = self.b.need(self.b.db, "DB")
        stmt: Statement = store.pending_versions(time.time(), SWEEP_BATCH)
        rows = (await db.execute(stmt.sql, stmt.params)).rows
        for row in rows:
            scope = TenantScope(str(row["tenant_id"]))
            document_id, version = str(row["document_id"]), int(row["version"])
            if "SELF" in self.b.services:
                try:
                    status = await self._continue_elsewhere(request_id, scope, document_id, version)
                except Exception as exc:
                    status, error = 0, repr(exc)[:300]
                else:
                    error = ""
                if status == 202:
                    continue
                # Run it in this invocation rather than not at all.
                log("ingest_sweep_handover_failed", level="error", status=status, error=error)
            self._run_job(request_id, wait_until, scope, document_id, version)
        log("ingest_sweep", request_id=request_id, cron=cron, resumed=len(rows))
        return len(rows)

    async def delete(self, request: Request) -> Response:
        scope = scope_from_request(request)
        document_id = _document_id(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        await authorize(db, scope.viewer, document_id, write=True)
        doc = (await db.run(store.select_document(db, document_id, include_deleted=True))).rows
        if not doc:
            raise NotFound(f"document {document_id} not found")
        if request.query.get("purge") in ("true", "1"):
            await jobs.purge(self.b, scope, document_id)
            purged = DocumentDeleted(document_id=document_id, purged=True)
            return json_response(purged.model_dump(exclude_none=True))
        await db.batch([store.set_deleted(db, document_id, True), store.bump_corpus_version(db)])
        deleted = DocumentDeleted(document_id=document_id, deleted=True)
        return json_response(deleted.model_dump(exclude_none=True))

    async def restore(self, request: Request) -> Response:
        scope = scope_from_request(request)
        document_id = _document_id(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        await authorize(db, scope.viewer, document_id, write=True)
        result, _ = await db.batch(
            [store.set_deleted(db, document_id, False), store.bump_corpus_version(db)]
        )
        if result.changes != 1:
            raise NotFound(f"document {document_id} is not deleted (or does not exist)")
        return json_response(DocumentRestored(document_id=document_id, deleted=False).model_dump())

    # --- reads ---------------------------------------------------------------------------
    async def list(self, request: Request) -> Response:
        scope = scope_from_request(request)
        db = TenantDB(self.b.need(self.b.db, "DB"), scope)
        page = page_params(request.query, cursor=_DOCUMENT_ID)
        limit = page.limit
        rows = (await db.run(store.select_documents(db, limit + 1, page.after, scope.viewer))).rows
        documents = [_decode(r) for r in rows[:limit]]
        cursor = documents[-1]["id"] if len(rows) > limit else None
        return json_response(
            DocumentList.model_validate(
                {"documents": documents, "next_cursor": cursor}
            ).model_dump()
        )

    async def get(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        document_id = _document_id(request)
        await authorize(db, db.scope.viewer, document_id, write=False)
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
        return json_response(DocumentDetail.model_validate(doc).model_dump())

    async def update(self, request: Request) -> Response:
        """`PATCH /documents/{id}`: title, tags, metadata — no new version, caches bumped."""
        db = tenant_db(self.b, request)
        document_id = _document_id(request)
        change = request.model(DocumentPatch)
        await authorize(db, db.scope.viewer, document_id, write=True)
        metadata: dict[str, object] | None = (
            None if change.metadata is None else dict(change.metadata.items())
        )
        labels = store.DocumentLabels(change.title, change.tags, metadata)
        result, _ = await db.batch(
            [store.update_labels(db, document_id, labels), store.bump_corpus_version(db)]
        )
        if result.changes != 1:
            raise NotFound(f"document {document_id} not found")
        return await self.get(request)

    async def sections(self, request: Request) -> Response:
        """`GET /documents/{id}/sections`: the outline of the live version; with `?section=`
        (heading or path) or `?page=`, that section's text too (at most `max_chars`); with
        `?char_start=&char_end=`, that span's (a citation's, with context: the web console);
        with `?whole=true` the whole text's; with only `?max_chars=`, the first section's."""
        db = tenant_db(self.b, request)
        document_id = _document_id(request)
        only_params(
            request.query, ("section", "page", "char_start", "char_end", "max_chars", "whole")
        )
        await authorize(db, db.scope.viewer, document_id, write=False)
        rows = (await db.run(store.select_document(db, document_id))).rows
        if not rows or rows[0]["live_version"] is None:
            raise NotFound(f"document {document_id} has no ready version yet")
        version = int(rows[0]["live_version"])
        row = (await db.run(store.select_version(db, document_id, version))).rows[0]
        stored = await jobs.load_extracted(self.b, str(row["text_key"]))
        text, pages, headings = stored["text"], stored["pages"], stored["headings"]
        outline = sections.outline(len(text), headings, pages)
        chosen = None
        query = request.query
        if "section" in query and "page" in query:
            raise ValidationFailed("send at most one of `section` or `page`")
        if ("section" in query or "page" in query) and "char_start" in query:
            raise ValidationFailed("send `section`, `page` or `char_start`/`char_end`, not two")
        if "section" in query:
            chosen = sections.find(outline, query["section"][:1024], pages)
        elif "page" in query:
            chosen = sections.by_page(pages, _int_param(query, "page", 1, 100_000))
        elif "char_start" in query or "char_end" in query:
            chosen = _char_span(query, pages, len(text))
        elif query.get("whole") == "true":
            chosen = sections.Section((), 0, 0, len(text), *sections.span_pages(pages, len(text)))
        elif "max_chars" in query and outline:
            chosen = outline[0]
        body: dict[str, Any] = {
            "document_id": document_id,
            "version": version,
            "text_length": len(text),
            "sections": [s.public() for s in outline],
            "section": None,
        }
        if chosen is not None:
            # The whole text may be longer: MCP's document resources (kernel.contracts.mcp).
            most = MAX_RESOURCE_CHARS if query.get("whole") == "true" else 20_000
            limit = _int_param(query, "max_chars", 1, most) if "max_chars" in query else 4000
            body["section"] = {
                **chosen.public(),
                "text": text[chosen.char_start : min(chosen.char_end, chosen.char_start + limit)],
                "truncated": chosen.char_end - chosen.char_start > limit,
            }
        return json_response(DocumentSections.model_validate(body).model_dump())

    # --- direct uploads (presigned R2 URLs: ingest.direct) ----------------------------------
    def _uploader(self, request: Request) -> str:
        owner = request.header(PRINCIPAL_HEADER)
        if not owner:
            raise BadRequest("uploads need an authenticated principal")
        return owner

    async def create_upload(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        ask = request.model(CreateUpload)
        viewer = db.scope.viewer
        if ask.purpose == "document" and (viewer is None or viewer.role not in WRITERS):
            raise Forbidden("uploading documents needs one of the roles: admin, teacher")
        ticket = await direct.create(self.b, db, self._uploader(request), ask)
        return json_response(ticket.model_dump(), 201)

    async def confirm_upload(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        done = await direct.confirm(
            self.b, db, self._uploader(request), request.params["upload_id"]
        )
        return json_response(done.model_dump())

    async def download_upload(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        ticket = await direct.download(
            self.b, db, self._uploader(request), request.params["upload_id"]
        )
        return json_response(ticket.model_dump())

    async def status(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        document_id = _document_id(request)
        await authorize(db, db.scope.viewer, document_id, write=False)
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
        status = DocumentStatus(
            document_id=document_id,
            version=version,
            live_version=rows[0]["live_version"],
            status=row["status"],
            progress=Progress(done=done, total=total),
            error=row["error"],
        )
        return json_response(status.model_dump())


def _idempotency_key(request: Request) -> str | None:
    key = request.header("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1-255 visible ASCII characters")
    return key


class IngestApp(WorkerApp):
    """The routes plus the cron handler, built once per env (kernel.runtime.platform.cached_app)."""

    def __init__(self, ingest: Ingest, router: Router) -> None:
        super().__init__("ingest", router, ingest.b.tracer)
        self.ingest = ingest


async def run_scheduled(app: WorkerApp, controller: Any, ctx: Any) -> int:
    """entry.py `scheduled`: the cron sweep, with no HTTP request involved."""
    assert isinstance(app, IngestApp), app
    return await app.ingest.sweep_pending(
        new_request_id(), background(ctx), cron=str(getattr(controller, "cron", ""))
    )


def build_app(raw_env: Any) -> WorkerApp:
    ingest = Ingest(
        bindings := resolve("ingest", raw_env, {"SELF": "ingest", "LLM": "llm"}, outbound=True)
    )
    router = Router()
    router.add("POST", "/documents", ingest.create)
    router.add("GET", "/documents", ingest.list)
    router.add("GET", "/documents/{document_id}", ingest.get)
    router.add("PUT", "/documents/{document_id}", ingest.replace)
    router.add("DELETE", "/documents/{document_id}", ingest.delete)
    router.add("POST", "/documents/{document_id}/restore", ingest.restore)
    router.add("GET", "/documents/{document_id}/status", ingest.status)
    router.add("PATCH", "/documents/{document_id}", ingest.update)
    work = ProjectRoutes(ingest)
    router.add("POST", "/projects", work.create)
    router.add("GET", "/projects", work.list)
    router.add("GET", "/projects/{project_id}", work.get)
    router.add("PUT", "/projects/{project_id}", work.update)
    router.add("DELETE", "/projects/{project_id}", work.delete)
    router.add("POST", "/projects/{project_id}/confirm", work.confirm)
    router.add("POST", "/projects/{project_id}/access", work.grant)
    router.add("GET", "/projects/{project_id}/access", work.grants)
    router.add("DELETE", "/projects/{project_id}/access/{user_id}", work.revoke)
    notes = AnnotationRoutes(ingest.b)
    router.add("POST", "/annotations", notes.create)
    router.add("GET", "/annotations", notes.list)
    router.add("GET", "/annotations/{annotation_id}", notes.get)
    router.add("PATCH", "/annotations/{annotation_id}", notes.update)
    router.add("DELETE", "/annotations/{annotation_id}", notes.delete)
    tapes = RecordingRoutes(ingest.b)
    router.add("POST", "/recordings", tapes.create)
    router.add("GET", "/recordings", tapes.list)
    router.add("GET", "/recordings/{recording_id}", tapes.get)
    router.add("DELETE", "/recordings/{recording_id}", tapes.delete)
    router.add("POST", "/recordings/{recording_id}/confirm", tapes.confirm)
    router.add("POST", "/recordings/{recording_id}/analysis", tapes.analyze)
    router.add("GET", "/recordings/{recording_id}/analysis", tapes.analyses)
    router.add("GET", "/recordings/{recording_id}/analysis/{analysis_id}", tapes.analysis)
    router.add("POST", "/uploads", ingest.create_upload)
    router.add("POST", "/uploads/{upload_id}/confirm", ingest.confirm_upload)
    router.add("GET", "/uploads/{upload_id}/download", ingest.download_upload)
    router.add("GET", "/documents/{document_id}/sections", ingest.sections)
    router.add("GET", "/settings", ingest.get_settings)
    router.add("PATCH", "/settings", ingest.update_settings)
    router.add("POST", "/internal/ingest/continue", ingest.continue_job)
    router.add("POST", "/internal/ingest/sweep", ingest.sweep)
    add_internal_routes(router, bindings)
    return IngestApp(ingest, router)
