"""The local mesh over HTTP (ASGI in-process: the same bytes a socket would carry)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.dev import AsgiGateway
from emulator.mesh import Mesh, build_mesh

OPERATOR_TOKEN = "op_test_" + "x" * 24


@pytest.fixture(scope="session")
def ai() -> Any:
    from emulator.ai import EmulatedAI

    return EmulatedAI()  # the model loads once per test session


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "edgerag"


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)


def client_for(mesh: Mesh) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=AsgiGateway(mesh))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787")


@pytest.fixture
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(mesh) as c:
        yield c


async def new_tenant(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    response = await client.post(
        "/v1/tenants", json={"name": name}, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["tenant_id"], {"authorization": f"Bearer {body['api_key']}"}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)
