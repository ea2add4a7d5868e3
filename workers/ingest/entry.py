"""Ingest Worker: originals to R2, extract, chunk, embed, index (Vectorize + D1/FTS5)."""

from typing import Any

from workers import Request, Response, WorkerEntrypoint

from ingest.app import build_app, run_scheduled
from kernel.runtime.platform import cached_app, serve


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await serve(cached_app(build_app, self.env), request, Response, self.ctx)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        """Cron trigger (wrangler.toml `[triggers]`): resume jobs whose lease expired.

        The runtime passes (controller, env, ctx); `self.env` is the SDK-wrapped env."""
        await run_scheduled(cached_app(build_app, self.env), controller, self.ctx)
