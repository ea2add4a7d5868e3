"""Echo Worker for the service contract (same behaviour as tests/contract/test_emulated_service.py).

Answers every request with JSON {"method", "path", "headers", "body_hex"}; 418 for /teapot.
"""

import json
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = {
            "method": getattr(request.method, "value", request.method),
            "path": path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body_hex": (await request.bytes()).hex(),
        }
        return Response(
            json.dumps(payload),
            status=418 if parts.path == "/teapot" else 200,
            headers={"content-type": "application/json"},
        )
