"""RAG Worker: hybrid retrieval (Vectorize + D1 FTS5), fusion, reranking; answers via the llm Worker."""

from workers import Request, Response, WorkerEntrypoint

from kernel.runtime.platform import cached_app, serve
from rag.app import build_app


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await serve(cached_app(build_app, self.env), request, Response, self.ctx)
