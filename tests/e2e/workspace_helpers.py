"""Workspaces in the e2e tests: projects and recordings through their presigned upload round
trip, and a mesh whose llm Worker reaches the dev server's own /analyzer in process."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from emulator.dev import AsgiGateway
from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN
from tests.fixtures.audiogen import practice_take

LOCAL_ANALYZER = "http://127.0.0.1:8787/analyzer/v1/analyze"
SECONDS = 12.0
LESSON = (Path(__file__).resolve().parents[2] / "examples" / "lesson.pdf").read_bytes()
__all__ = [
    "LESSON",
    "LOCAL_ANALYZER",
    "SECONDS",
    "analyzing_mesh",
    "create_project",
    "practice_take",
    "ready_project",
    "upload_recording",
]


class _OwnApp(httpx.AsyncBaseTransport):
    """The llm Worker's HTTP client, answered by the gateway app itself (its /analyzer)."""

    def __init__(self) -> None:
        self.app: AsgiGateway | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


def analyzing_mesh(data_dir: Path, ai: Any, **vars: str) -> tuple[Mesh, AsgiGateway]:
    own = _OwnApp()
    mesh = build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(transport=own),
        vars={"EDGERAG_ANALYZER_URL": LOCAL_ANALYZER, **vars},
    )
    own.app = AsgiGateway(mesh)
    return mesh, own.app


async def upload_recording(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    data: bytes,
    content_type: str = "audio/wav",
    title: str = "Etude take",
    confirm: bool = True,
) -> httpx.Response:
    """POST /v1/recordings, PUT the bytes to the presigned URL, then confirm (the reply)."""
    made = await client.post(
        "/v1/recordings",
        json={
            "title": title,
            "filename": "take.wav",
            "content_type": content_type,
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        headers=auth,
    )
    if made.status_code != 201:
        return made
    body = made.json()
    assert body["recording"]["status"] == "pending", body
    ticket = body["upload"]
    put = await client.put(ticket["url"], content=data, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    if not confirm:
        return made
    return await client.post(f"/v1/recordings/{body['recording']['id']}/confirm", headers=auth)


async def create_project(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    title: str,
    data: bytes = LESSON,
    upload: bool = True,
) -> dict[str, Any]:
    """POST /v1/projects and (unless `upload=False`) PUT the PDF: the pending project."""
    made = await client.post(
        "/v1/projects",
        json={
            "title": title,
            "description": "for class",
            "filename": "lesson.pdf",
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        headers=auth,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["project"]["status"] == "pending" and body["project"]["access"] == "owner"
    if upload:
        ticket = body["upload"]
        put = await client.put(ticket["url"], content=data, headers=ticket["headers"])
        assert put.status_code == 200, put.text
    return dict(body["project"])


async def ready_project(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    """A confirmed project of examples/lesson.pdf (2 pages): its id."""
    project = await create_project(client, auth, "Etude")
    done = await client.post(f"/v1/projects/{project['id']}/confirm", headers=auth)
    assert done.status_code == 200 and done.json()["page_count"] == 2, done.text
    return str(project["id"])
