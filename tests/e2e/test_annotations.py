"""Page annotations over HTTP: highlights, notes and drawings with validated, normalized geometry;
each in its author's copy; a teacher sees their students'; only the author changes or deletes;
strangers and other tenants get 404s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import new_tenant
from tests.e2e.identity import add_user, tuned_mesh
from tests.e2e.workspace_helpers import ready_project

HIGHLIGHT = {"kind": "highlight", "x": 0.1, "y": 0.2, "width": 0.5, "height": 0.05,
             "color": "#ffeb3b", "text": "lift"}  # fmt: skip
NOTE = {"kind": "note", "x": 0.8, "y": 0.1, "text": "Watch the tempo here"}
DRAWING = {"kind": "drawing", "color": "#e53935", "stroke_width": 0.004,
           "paths": [{"points": [[0.1, 0.1], [0.2, 0.15], [0.3, 0.1]]}]}  # fmt: skip


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai)


async def _annotate(
    client: httpx.AsyncClient, auth: dict[str, str], project_id: str, page: int, shape: Any
) -> httpx.Response:
    return await client.post(
        "/v1/annotations", json={"project_id": project_id, "page": page, **shape}, headers=auth
    )


async def _listed(
    client: httpx.AsyncClient, auth: dict[str, str], project_id: str, page: int | None = None
) -> list[dict[str, Any]]:
    query = f"?project_id={project_id}" + (f"&page={page}" if page else "")
    reply = await client.get(f"/v1/annotations{query}", headers=auth)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["annotations"])


async def test_authors_teachers_and_strangers(client: httpx.AsyncClient) -> None:
    tenant, admin = await new_tenant(client, "annotations")
    teacher = await add_user(client, admin, tenant, "teacher", "t@a.test")
    student = await add_user(client, admin, tenant, "student", "s@a.test")
    stranger = await add_user(client, admin, tenant, "student", "x@a.test")
    other_teacher = await add_user(client, admin, tenant, "teacher", "o@a.test")
    await client.post(
        "/v1/relationships", json={"student_id": student["id"]}, headers=teacher["auth"]
    )
    project_id = await ready_project(client, teacher["auth"])
    # Before a grant the student cannot annotate (nor learn that the project exists).
    refused = await _annotate(client, student["auth"], project_id, 1, HIGHLIGHT)
    assert refused.status_code == 404, refused.text
    await client.post(
        f"/v1/projects/{project_id}/access",
        json={"user_id": student["id"], "permission": "view"},
        headers=teacher["auth"],
    )
    mine = await _annotate(client, student["auth"], project_id, 1, HIGHLIGHT)
    assert mine.status_code == 201, mine.text
    body = mine.json()
    assert body["kind"] == "highlight" and body["mine"] is True and body["page"] == 1
    assert body["shape"]["width"] == 0.5 and body["author_id"] == student["id"]
    for shape in (NOTE, DRAWING):
        assert (await _annotate(client, student["auth"], project_id, 2, shape)).status_code == 201
    teacher_note = await _annotate(client, teacher["auth"], project_id, 1, NOTE)
    assert teacher_note.status_code == 201
    # The student sees their own copy; the teacher sees theirs and their student's.
    assert {a["author_id"] for a in await _listed(client, student["auth"], project_id)} == {
        student["id"]
    }
    seen = await _listed(client, teacher["auth"], project_id)
    assert len(seen) == 4 and {a["author_id"] for a in seen} == {student["id"], teacher["id"]}
    assert len(await _listed(client, teacher["auth"], project_id, page=2)) == 2
    assert all(not a["mine"] for a in seen if a["author_id"] == student["id"])
    # Another teacher and a stranger cannot see the project, so neither its annotations.
    for who in (other_teacher["auth"], stranger["auth"]):
        listing = await client.get(f"/v1/annotations?project_id={project_id}", headers=who)
        assert listing.status_code == 404
        assert (await client.get(f"/v1/annotations/{body['id']}", headers=who)).status_code == 404
    # Only the author changes or deletes, even a teacher who sees it cannot.
    path = f"/v1/annotations/{body['id']}"
    teacher_edit = await client.patch(path, json={"color": "#000000"}, headers=teacher["auth"])
    assert teacher_edit.status_code == 403
    assert (await client.delete(path, headers=teacher["auth"])).status_code == 403
    moved = await client.patch(path, json={"x": 0.2, "page": 2}, headers=student["auth"])
    assert moved.status_code == 200, moved.text
    assert moved.json()["shape"]["x"] == 0.2 and moved.json()["page"] == 2
    off_page = await client.patch(path, json={"x": 0.8}, headers=student["auth"])
    assert off_page.status_code == 422  # 0.8 + width 0.5 leaves the page
    assert (await client.get(path, headers=student["auth"])).json()["shape"]["x"] == 0.2
    kind = await client.patch(path, json={"kind": "note"}, headers=student["auth"])
    assert kind.status_code == 422
    assert (await client.delete(path, headers=student["auth"])).status_code == 200
    assert (await client.get(path, headers=student["auth"])).status_code == 404
    # Another tenant's admin sees nothing of it.
    _, elsewhere = await new_tenant(client, "annotations-elsewhere")
    listing = await client.get(f"/v1/annotations?project_id={project_id}", headers=elsewhere)
    assert listing.status_code == 404
    # Deleting the project deletes its annotations.
    gone = await client.delete(f"/v1/projects/{project_id}", headers=teacher["auth"])
    assert gone.status_code == 200
    ann = teacher_note.json()["id"]
    assert (await client.get(f"/v1/annotations/{ann}", headers=teacher["auth"])).status_code == 404


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        ({**HIGHLIGHT, "x": 1.5}, "x"),
        ({**HIGHLIGHT, "width": 0}, "width"),
        ({**HIGHLIGHT, "x": 0.9, "width": 0.5}, "shape"),
        ({**HIGHLIGHT, "color": "red"}, "color"),
        ({**NOTE, "text": ""}, "text"),
        ({**NOTE, "text": "x" * 5001}, "text"),
        ({**DRAWING, "paths": []}, "paths"),
        ({**DRAWING, "paths": [{"points": [[0.1, 0.1]]}]}, "points"),
        ({**DRAWING, "paths": [{"points": [[0.1, 0.1, 0.2], [0.3, 0.3]]}]}, "points"),
        ({**DRAWING, "stroke_width": 0.5}, "stroke_width"),
        ({**DRAWING, "paths": [{"points": [[0.5, 0.5]] * 2001}]}, "points"),
        ({**DRAWING, "paths": [{"points": [[0.5, 0.5]] * 1500}] * 8}, "shape"),
        ({"kind": "circle", "x": 0.1, "y": 0.1}, "shape"),
        ({**NOTE, "mood": "happy"}, "mood"),
    ],
)
async def test_bad_geometry_is_a_422_and_stores_nothing(
    client: httpx.AsyncClient, shape: dict[str, Any], field: str
) -> None:
    _, auth = await new_tenant(client, "geometry")
    project_id = await ready_project(client, auth)
    reply = await _annotate(client, auth, project_id, 1, shape)
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["error"]["message"]
    assert await _listed(client, auth, project_id) == []


async def test_nan_infinity_pages_and_ids(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "geometry-nan")
    project_id = await ready_project(client, auth)
    # Python's json reads NaN and Infinity; they are not numbers a page has.
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = (
            f'{{"project_id": "{project_id}", "page": 1, "kind": "note", "x": {raw},'
            ' "y": 0.5, "text": "hi"}'
        )
        reply = await client.post(
            "/v1/annotations",
            content=body,
            headers={**auth, "content-type": "application/json"},
        )
        assert reply.status_code in (400, 422), (raw, reply.text)
    assert (await _annotate(client, auth, project_id, 3, NOTE)).status_code == 422  # 2 pages
    assert (await _annotate(client, auth, project_id, 0, NOTE)).status_code == 422
    missing = await _annotate(client, auth, "prj_" + "0" * 24, 1, NOTE)
    assert missing.status_code == 404
    assert (await client.get("/v1/annotations/ann_nope", headers=auth)).status_code == 404
    no_project = await client.get("/v1/annotations", headers=auth)
    assert no_project.status_code == 422
    huge = {**DRAWING, "paths": [{"points": [[0.5, 0.5]] * 2000}] * 100}
    too_big = await _annotate(client, auth, project_id, 1, huge)
    assert too_big.status_code in (413, 422)
    assert await _listed(client, auth, project_id) == []
