"""Gateway Worker: the only public entry. Auth, tenants, routing to the other Workers."""

from workers import Request, Response, WorkerEntrypoint

from gateway.app import build_app
from kernel.runtime.platform import cached_app, serve


class Default(WorkerEntrypoint):
    async def fetch(self, request: Request) -> Response:
        return await serve(cached_app(build_app, self.env), request, Response, self.ctx)
