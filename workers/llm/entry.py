"""LLM Worker: model/provider routing and prompt assembly for grounded answers."""

from workers import Request, Response, WorkerEntrypoint

from kernel.runtime.platform import cached_app, serve
from llm.app import build_app


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await serve(cached_app(build_app, self.env), request, Response, self.ctx)
