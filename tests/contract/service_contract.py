"""Contract for the Service port: bytes in, bytes out, nothing else crosses.

Implementations provide a `service` fixture bound to an echo Worker that answers every request
with JSON `{"method", "path", "headers", "body_hex"}` (and status 418 for `/teapot`).
"""

from __future__ import annotations

import json

from kernel.bindings.ports import Service


class ServiceContract:
    async def test_round_trips_method_path_headers_and_body(self, service: Service) -> None:
        body = bytes(range(256))
        response = await service.fetch(
            "POST",
            "/echo?x=1",
            headers={"x-request-id": "r-1", "content-type": "application/octet-stream"},
            body=body,
        )
        assert response.status == 200
        echoed = json.loads(response.body)
        assert echoed["method"] == "POST"
        assert echoed["path"] == "/echo?x=1"
        assert echoed["headers"]["x-request-id"] == "r-1"
        assert bytes.fromhex(echoed["body_hex"]) == body

    async def test_get_has_no_body_and_status_passes_through(self, service: Service) -> None:
        response = await service.fetch("GET", "/teapot", headers={})
        assert response.status == 418
        assert json.loads(response.body)["body_hex"] == ""
        assert response.headers["content-type"].startswith("application/json")

    async def test_unicode_headers_survive_as_text(self, service: Service) -> None:
        response = await service.fetch("GET", "/echo", headers={"x-note": "plain-ascii"})
        assert json.loads(response.body)["headers"]["x-note"] == "plain-ascii"
