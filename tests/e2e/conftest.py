"""The local mesh over HTTP (ASGI in-process: the same bytes a socket would carry)."""

from __future__ import annotations

import asyncio
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
    await mesh.drain()  # background ingestion finishes before the data dir goes away


async def new_tenant(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    response = await client.post(
        "/v1/tenants", json={"name": name}, headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["tenant_id"], {"authorization": f"Bearer {body['api_key']}"}


async def wait_ready(
    client: httpx.AsyncClient, auth: dict[str, str], document_id: str, timeout_s: float = 120
) -> dict[str, Any]:
    """Poll the status route like a client would; the mesh processes in waitUntil tasks."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get(f"/v1/documents/{document_id}/status", headers=auth)
        assert response.status_code == 200, response.text
        status = response.json()
        if status["status"] in ("ready", "failed"):
            return dict(status)
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.05)


async def ingest(
    client: httpx.AsyncClient, auth: dict[str, str], title: str, text: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/documents", json={"title": title, "text": text, **extra}, headers=auth
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["document_id"].startswith("d_") and body["status"] == "queued"
    status = await wait_ready(client, auth, body["document_id"])
    assert status["status"] == "ready", status
    return dict(body)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"] and "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code
    return dict(error)
