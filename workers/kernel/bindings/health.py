"""Routes every Worker exposes to the gateway (never to the internet): health and metrics.

`HealthReport` is the contract of `GET /internal/health` (re-exported by
`kernel.contracts.health`). It lives here, beside the route that builds it, because the kernel's
layers only import downwards: bindings cannot reach into contracts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kernel.bindings.env import Bindings
from kernel.runtime.http import Request, Response, json_response, text_response
from kernel.runtime.metrics import registry
from kernel.runtime.router import Router


class ModelInfo(BaseModel):
    """What serves one AI model. Adapters add their own notes (dimensions, examples, ...)."""

    model_config = ConfigDict(extra="allow")

    served_by: str
    stand_in: bool  # a local substitute, never the Cloudflare model itself


class ProviderHealth(BaseModel):
    """One provider of the llm Worker's chain: whether it is set up and whether it is resting."""

    name: str
    model: str
    configured: bool
    state: Literal["available", "cooling_down", "not_configured"]
    cooling_down_until: float | None = None  # unix seconds
    last_error: str | None = None  # the failure kind that started the cool-down


class HealthReport(BaseModel):
    worker: str
    status: Literal["ok"]  # a Worker that answers is ok; the gateway reports the others
    adapter: Literal["cloudflare", "emulator", "mixed"]
    bindings: dict[str, str]  # binding name -> adapter kind
    models: dict[str, ModelInfo] | None = None  # only Workers with an AI binding
    providers: list[ProviderHealth] | None = None  # the llm Worker's model provider chain
    # The llm Worker's text-to-speech providers ([] = not enabled: POST /v1/tts is a 501).
    speech: list[dict[str, Any]] | None = None
    # The llm Worker's deployment analyzer for recordings (None: only tenants' own, if any).
    analyzer: dict[str, Any] | None = None


def build_health_report(bindings: Bindings) -> HealthReport:
    return HealthReport.model_validate(
        {
            "worker": bindings.worker,
            "status": "ok",
            **bindings.describe(),
            "models": bindings.ai.describe() if bindings.ai is not None else None,
        }
    )


def health_report(bindings: Bindings) -> dict[str, Any]:
    """The report as it goes on the wire: no `models` key without an AI binding."""
    return build_health_report(bindings).model_dump(exclude_none=True)


Extra = Callable[[], Awaitable[dict[str, Any]]]


def add_internal_routes(router: Router, bindings: Bindings, extra: Extra | None = None) -> None:
    """`extra` adds a Worker's own fields to its health report (the llm Worker's providers)."""

    async def health(request: Request) -> Response:
        report = health_report(bindings)
        if extra is not None:
            report.update(await extra())
        return json_response(HealthReport.model_validate(report).model_dump(exclude_none=True))

    async def metrics(request: Request) -> Response:
        return text_response(
            registry(bindings.worker).render({"worker": bindings.worker}),
            content_type="text/plain; version=0.0.4",
        )

    router.add("GET", "/internal/health", health)
    router.add("GET", "/internal/metrics", metrics)
