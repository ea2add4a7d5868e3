"""Peer Worker reached through a service binding (HTTP fetch and JS RPC)."""

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        payload = await request.json()
        return Response.json(
            {
                "echo": payload,
                "tenant_header": request.headers.get("x-tenant"),
                "method": str(request.method),
                "url": request.url,
            },
            headers={"x-peer": "yes"},
        )

    async def add(self, a, b):
        return a + b
