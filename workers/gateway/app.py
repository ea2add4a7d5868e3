"""The gateway Worker: the route table (gateway/routes.py) run by one pipeline
(gateway/pipeline.py) over the gateway configured from this isolate's bindings."""

from __future__ import annotations

from typing import Any

from gateway.context import SERVICES, Gateway
from gateway.pipeline import GatewayApp
from gateway.routes import ROUTES
from kernel.bindings.env import resolve


def build_app(raw_env: Any) -> GatewayApp:
    return GatewayApp(Gateway(resolve("gateway", raw_env, SERVICES)), ROUTES)
