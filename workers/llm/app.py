"""LLM Worker routes. The foundation exposes health/metrics; grounded generation arrives with /answer."""

from __future__ import annotations

from typing import Any

from kernel.app import WorkerApp
from kernel.env import resolve
from kernel.internal import add_internal_routes
from kernel.router import Router


def build_app(raw_env: Any) -> WorkerApp:
    bindings = resolve("llm", raw_env)
    router = Router()
    add_internal_routes(router, bindings)
    return WorkerApp("llm", router)
