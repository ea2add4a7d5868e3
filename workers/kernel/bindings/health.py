"""Routes every Worker exposes to the gateway (never to the internet): health and metrics."""

from __future__ import annotations

from typing import Any

from kernel.bindings.env import Bindings
from kernel.runtime.http import Request, Response, json_response, text_response
from kernel.runtime.metrics import registry
from kernel.runtime.router import Router


def health_report(bindings: Bindings) -> dict[str, Any]:
    report: dict[str, Any] = {"worker": bindings.worker, "status": "ok", **bindings.describe()}
    if bindings.ai is not None:
        report["models"] = bindings.ai.describe()
    return report


def add_internal_routes(router: Router, bindings: Bindings) -> None:
    async def health(request: Request) -> Response:
        return json_response(health_report(bindings))

    async def metrics(request: Request) -> Response:
        return text_response(
            registry(bindings.worker).render({"worker": bindings.worker}),
            content_type="text/plain; version=0.0.4",
        )

    router.add("GET", "/internal/health", health)
    router.add("GET", "/internal/metrics", metrics)
