"""The in-process mesh a benchmark measures: fresh data directory, one tenant, its API key."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from emulator.dev import AsgiGateway
from emulator.mesh import Mesh, build_mesh

OPERATOR = "op_bench_token_0123456789"


@asynccontextmanager
async def bench_tenant(
    ai: Any = None,
) -> AsyncIterator[tuple[Mesh, httpx.AsyncClient, dict[str, str]]]:
    """(mesh, client, auth): the gateway over ASGI — the bytes a socket would carry — with a
    new tenant's admin key in `auth`; everything is removed on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        mesh = build_mesh(Path(tmp), operator_token=OPERATOR, ai=ai)
        transport = httpx.ASGITransport(app=AsgiGateway(mesh))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=600
        ) as client:
            created = await client.post(
                "/v1/tenants",
                json={"name": "bench"},
                headers={"authorization": f"Bearer {OPERATOR}"},
            )
            created.raise_for_status()
            yield mesh, client, {"authorization": f"Bearer {created.json()['api_key']}"}
