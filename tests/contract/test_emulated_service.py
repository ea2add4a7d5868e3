from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from workers import Response, WorkerEntrypoint

from emulator.services import EmulatedService
from tests.contract.service_contract import ServiceContract


class EchoWorker(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = {
            "method": request.method.value,
            "path": path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body_hex": (await request.bytes()).hex(),
        }
        return Response(
            json.dumps(payload),
            status=418 if parts.path == "/teapot" else 200,
            headers={"content-type": "application/json"},
        )


class TestEmulatedService(ServiceContract):
    @pytest.fixture
    def service(self) -> EmulatedService:
        return EmulatedService("echo", lambda: EchoWorker(None, None))

    async def test_no_python_object_crosses(self, service: EmulatedService) -> None:
        body = bytearray(b"mutable")
        response = await service.fetch("POST", "/echo", headers={}, body=bytes(body))
        body[:] = b"changed"
        assert isinstance(response.body, bytes)
        assert bytes.fromhex(json.loads(response.body)["body_hex"]) == b"mutable"
