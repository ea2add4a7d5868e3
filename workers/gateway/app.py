"""The gateway Worker: the route table (gateway/routes.py) run by one pipeline
(gateway/pipeline.py) over the gateway configured from this isolate's bindings."""

from __future__ import annotations

from typing import Any

from gateway import console
from gateway.context import SERVICES, Gateway
from gateway.pipeline import GatewayApp
from gateway.routes import ROUTES
from kernel.bindings.env import resolve


def build_app(raw_env: Any) -> GatewayApp:
    # ASSETS (the web console's files) is a Fetcher like a service binding, but no Worker.
    bindings = resolve("gateway", raw_env, {**SERVICES, **console.BINDING})
    return GatewayApp(Gateway(bindings), ROUTES)
