"""Ingest Worker: originals to R2, extract, chunk, embed, index (Vectorize + D1/FTS5)."""

from workers import Request, Response, WorkerEntrypoint

from ingest.app import build_app
from kernel.runtime import cached_app, serve


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await serve(cached_app(build_app, self.env), request, Response, self.ctx)
