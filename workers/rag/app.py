"""RAG Worker routes (called by the gateway over a service binding only)."""

from __future__ import annotations

from typing import Any

from kernel.api import SearchRequest
from kernel.app import WorkerApp
from kernel.env import Bindings, resolve
from kernel.http import Request, Response, json_response
from kernel.internal import add_internal_routes
from kernel.router import Router
from kernel.tenancy import scope_from_request
from rag.search import hybrid_search


class Rag:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def search(self, request: Request) -> Response:
        scope = scope_from_request(request)
        query = request.model(SearchRequest)
        return json_response((await hybrid_search(self.b, scope, query)).model_dump())


def build_app(raw_env: Any) -> WorkerApp:
    rag = Rag(bindings := resolve("rag", raw_env, {"LLM": "llm"}))
    router = Router()
    router.add("POST", "/search", rag.search)
    add_internal_routes(router, bindings)
    return WorkerApp("rag", router)
