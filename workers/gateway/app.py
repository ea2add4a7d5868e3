"""Gateway routes: public surface of the mesh."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from gateway.auth import Principal, authenticate, require_operator
from gateway.tenants import create_tenant
from kernel.api import AnswerRequest, CreateTenant, SearchRequest
from kernel.app import WorkerApp
from kernel.env import Bindings, resolve
from kernel.errors import Forbidden, PayloadTooLarge
from kernel.http import Request, Response, json_response, text_response
from kernel.internal import health_report
from kernel.metrics import merge_exposition, registry
from kernel.router import Router
from kernel.services import PRINCIPAL_HEADER, ROLE_HEADER, call, relay

SERVICES = {"RAG": "rag", "INGEST": "ingest", "LLM": "llm"}
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
JSON_MAX_BYTES = 1024 * 1024
MULTIPART_ALLOWANCE = 64 * 1024  # form framing and fields around the file


class Gateway:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings
        self.max_upload = int(bindings.var("EDGERAG_MAX_UPLOAD_BYTES") or DEFAULT_MAX_UPLOAD_BYTES)

    # --- helpers -------------------------------------------------------------------------
    def _limit_body(self, request: Request, limit: int) -> None:
        declared = request.header("content-length")
        size = max(len(request.body), int(declared) if declared and declared.isdigit() else 0)
        if size > limit:
            raise PayloadTooLarge(f"request body is {size} bytes; the limit is {limit}")

    async def _principal(self, request: Request) -> Principal:
        return await authenticate(request, self.b.need(self.b.db, "DB"))

    async def _forward(
        self,
        service: str,
        method: str,
        path: str,
        request: Request,
        principal: Principal,
        payload: Any = None,
    ) -> Response:
        upstream = await call(
            self.b.service(service),
            method,
            path,
            request_id=request.request_id,
            tenant_id=principal.tenant_id,
            payload=payload,
        )
        return relay(upstream)

    # --- operational -----------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        async def probe(name: str) -> dict[str, Any]:
            try:
                upstream = await call(
                    self.b.service(name), "GET", "/internal/health", request_id=request.request_id
                )
                report = json.loads(upstream.body)
                return (
                    report
                    if upstream.status == 200
                    else {"worker": SERVICES[name], "status": "error"}
                )
            except Exception as exc:  # health must report, not fail
                return {
                    "worker": SERVICES[name],
                    "status": "unreachable",
                    "error": type(exc).__name__,
                }

        reports = await asyncio.gather(*(probe(name) for name in SERVICES))
        workers = [health_report(self.b), *reports]
        healthy = all(w.get("status") == "ok" for w in workers)
        stand_ins = sorted(
            {
                f"{model}: {info.get('served_by', '?')}"
                for w in workers
                for model, info in (w.get("models") or {}).items()
                if info.get("stand_in")
            }
        )
        body = {
            "status": "ok" if healthy else "degraded",
            "workers": workers,
            "stand_ins": stand_ins,
        }
        return json_response(body, 200 if healthy else 503)

    async def metrics(self, request: Request) -> Response:
        texts = [registry("gateway").render({"worker": "gateway"})]
        for name in SERVICES:
            try:
                upstream = await call(
                    self.b.service(name), "GET", "/internal/metrics", request_id=request.request_id
                )
                if upstream.status == 200:
                    texts.append(upstream.body.decode("utf-8"))
            except Exception:  # a missing worker shows up in /health, not as a broken scrape
                continue
        return text_response(merge_exposition(texts), content_type="text/plain; version=0.0.4")

    # --- tenants ---------------------------------------------------------------------------
    async def create_tenant(self, request: Request) -> Response:
        require_operator(request, self.b.var("EDGERAG_OPERATOR_TOKEN"))
        body = request.model(CreateTenant, max_bytes=JSON_MAX_BYTES)
        created = await create_tenant(self.b.need(self.b.db, "DB"), body.name)
        return json_response(created, 201)

    # --- documents and search --------------------------------------------------------------
    async def _to_ingest(self, request: Request, method: str, path: str) -> Response:
        return await self._to("INGEST", request, method, path)

    async def _to(self, service: str, request: Request, method: str, path: str) -> Response:
        """Forward as bytes with the caller's identity: the Worker behind parses and validates."""
        principal = await self._principal(request)
        extra = {PRINCIPAL_HEADER: principal.key_id, ROLE_HEADER: principal.role}
        key = request.header("idempotency-key")
        if key is not None:
            extra["idempotency-key"] = key
        query = f"?{urlencode(request.query)}" if request.query else ""
        upstream = await call(
            self.b.service(service),
            method,
            path + query,
            request_id=request.request_id,
            tenant_id=principal.tenant_id,
            body=request.body if method in ("POST", "PUT", "PATCH") else None,
            content_type=request.header("content-type"),
            extra_headers=extra,
        )
        return relay(upstream)

    async def create_document(self, request: Request) -> Response:
        self._limit_body(request, self.max_upload + MULTIPART_ALLOWANCE)
        return await self._to_ingest(request, "POST", "/documents")

    async def replace_document(self, request: Request) -> Response:
        self._limit_body(request, self.max_upload + MULTIPART_ALLOWANCE)
        return await self._to_ingest(request, "PUT", f"/documents/{request.params['document_id']}")

    async def list_documents(self, request: Request) -> Response:
        return await self._to_ingest(request, "GET", "/documents")

    async def get_document(self, request: Request) -> Response:
        return await self._to_ingest(request, "GET", f"/documents/{request.params['document_id']}")

    async def document_status(self, request: Request) -> Response:
        return await self._to_ingest(
            request, "GET", f"/documents/{request.params['document_id']}/status"
        )

    async def delete_document(self, request: Request) -> Response:
        response = await self._to_ingest(
            request, "DELETE", f"/documents/{request.params['document_id']}"
        )
        if response.status == 200 and request.query.get("purge") in ("true", "1"):
            # Cached searches/answers may quote the purged text: remove them, don't just orphan them.
            principal = await self._principal(request)
            await call(
                self.b.service("RAG"),
                "POST",
                "/internal/cache/clear",
                request_id=request.request_id,
                tenant_id=principal.tenant_id,
                payload={},
            )
        return response

    async def restore_document(self, request: Request) -> Response:
        return await self._to_ingest(
            request, "POST", f"/documents/{request.params['document_id']}/restore"
        )

    async def answer(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        ask = request.model(AnswerRequest, max_bytes=JSON_MAX_BYTES)
        return await self._forward(
            "RAG", "POST", "/answer", request, principal, ask.model_dump(exclude_none=True)
        )

    async def chat(self, request: Request) -> Response:
        """All /v1/chat/... routes: the rag Worker owns sessions; bodies are JSON."""
        self._limit_body(request, JSON_MAX_BYTES)
        return await self._to("RAG", request, request.method, request.path.removeprefix("/v1"))

    async def get_settings(self, request: Request) -> Response:
        return await self._to_ingest(request, "GET", "/settings")

    async def update_settings(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        if principal.role != "admin":
            raise Forbidden("only tenant admins can change settings")
        return await self._to_ingest(request, "PATCH", "/settings")

    async def search(self, request: Request) -> Response:
        self._limit_body(request, JSON_MAX_BYTES)
        principal = await self._principal(request)
        query = request.model(SearchRequest, max_bytes=JSON_MAX_BYTES)
        return await self._forward(
            "RAG", "POST", "/search", request, principal, query.model_dump(exclude_none=True)
        )


def build_app(raw_env: Any) -> WorkerApp:
    gateway = Gateway(resolve("gateway", raw_env, SERVICES))
    router = Router()
    router.add("GET", "/health", gateway.health)
    router.add("GET", "/metrics", gateway.metrics)
    router.add("POST", "/v1/tenants", gateway.create_tenant)
    router.add("POST", "/v1/documents", gateway.create_document)
    router.add("GET", "/v1/documents", gateway.list_documents)
    router.add("GET", "/v1/documents/{document_id}", gateway.get_document)
    router.add("PUT", "/v1/documents/{document_id}", gateway.replace_document)
    router.add("DELETE", "/v1/documents/{document_id}", gateway.delete_document)
    router.add("GET", "/v1/documents/{document_id}/status", gateway.document_status)
    router.add("POST", "/v1/documents/{document_id}/restore", gateway.restore_document)
    router.add("GET", "/v1/settings", gateway.get_settings)
    router.add("PATCH", "/v1/settings", gateway.update_settings)
    router.add("POST", "/v1/search", gateway.search)
    router.add("POST", "/v1/answer", gateway.answer)
    router.add("POST", "/v1/chat/sessions", gateway.chat)
    router.add("GET", "/v1/chat/sessions", gateway.chat)
    router.add("GET", "/v1/chat/sessions/{session_id}", gateway.chat)
    router.add("DELETE", "/v1/chat/sessions/{session_id}", gateway.chat)
    router.add("POST", "/v1/chat/sessions/{session_id}/messages", gateway.chat)
    return WorkerApp("gateway", router)
