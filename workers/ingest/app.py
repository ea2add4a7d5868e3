"""Ingest Worker routes (called by the gateway over a service binding only)."""

from __future__ import annotations

import re
from typing import Any

from ingest import store
from ingest.pipeline import ingest_text
from kernel.api import CreateTextDocument
from kernel.app import WorkerApp
from kernel.env import Bindings, resolve
from kernel.errors import NotFound
from kernel.http import Request, Response, json_response
from kernel.internal import add_internal_routes
from kernel.router import Router
from kernel.tenancy import TenantDB, scope_from_request

_DOCUMENT_ID = re.compile(r"^d_[0-9a-f]{24}$")


class Ingest:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def create(self, request: Request) -> Response:
        scope = scope_from_request(request)
        doc = request.model(CreateTextDocument, max_bytes=64 * 1024 * 1024)
        accepted = await ingest_text(
            self.b, scope, title=doc.title, text=doc.text, request_id=request.request_id
        )
        return json_response(accepted.model_dump(), 202)

    async def list(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        result = await db.run(store.select_documents(db, limit=1000))
        return json_response({"documents": result.rows})

    async def get(self, request: Request) -> Response:
        db = TenantDB(self.b.need(self.b.db, "DB"), scope_from_request(request))
        document_id = request.params["document_id"]
        rows: list[dict[str, Any]] = []
        if _DOCUMENT_ID.match(document_id):
            rows = (await db.run(store.select_document(db, document_id))).rows
        if not rows:
            # Same answer for "never existed" and "another tenant's": ids must not be probeable.
            raise NotFound(f"document {document_id} not found")
        return json_response(rows[0])


def build_app(raw_env: Any) -> WorkerApp:
    ingest = Ingest(bindings := resolve("ingest", raw_env))
    router = Router()
    router.add("POST", "/documents", ingest.create)
    router.add("GET", "/documents", ingest.list)
    router.add("GET", "/documents/{document_id}", ingest.get)
    add_internal_routes(router, bindings)
    return WorkerApp("ingest", router)
