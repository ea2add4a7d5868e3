"""Projects over HTTP: a PDF uploaded straight to (emulated) R2 with a presigned PUT, confirmed
into a ready project with its page count, and who may see, change, share and delete it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import new_tenant, wait_ready
from tests.e2e.identity import add_user, tuned_mesh
from tests.e2e.workspace_helpers import LESSON, create_project


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai)


async def test_projects_upload_confirm_share_and_delete(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    tenant, admin = await new_tenant(client, "projects")
    teacher = await add_user(client, admin, tenant, "teacher", "t@p.test")
    other_teacher = await add_user(client, admin, tenant, "teacher", "o@p.test")
    student = await add_user(client, admin, tenant, "student", "s@p.test")
    await client.post(
        "/v1/relationships", json={"student_id": student["id"]}, headers=teacher["auth"]
    )
    project = await create_project(client, teacher["auth"], "Sonata")
    path = f"/v1/projects/{project['id']}"
    ready = await client.post(f"{path}/confirm", headers=teacher["auth"])
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["page_count"] == 2
    # Not shared yet: the student and another teacher see nothing; an admin sees it.
    for who in (student["auth"], other_teacher["auth"]):
        assert (await client.get(path, headers=who)).status_code == 404
        listed = (await client.get("/v1/projects", headers=who)).json()["projects"]
        assert project["id"] not in {p["id"] for p in listed}
    assert (await client.get(path, headers=admin)).json()["access"] == "admin"
    # View, then edit, for the student; grants are the owner's (or an admin's) to manage.
    granted = await client.post(
        f"{path}/access",
        json={"user_id": student["id"], "permission": "view"},
        headers=teacher["auth"],
    )
    assert granted.status_code == 201 and granted.json()["grants"][0]["permission"] == "view"
    seen = await client.get(path, headers=student["auth"])
    assert seen.status_code == 200 and seen.json()["access"] == "view"
    change = {"title": "Sonata in C"}
    assert (await client.put(path, json=change, headers=student["auth"])).status_code == 403
    await client.post(
        f"{path}/access",
        json={"user_id": student["id"], "permission": "edit"},
        headers=teacher["auth"],
    )
    edited = await client.put(path, json=change, headers=student["auth"])
    assert edited.status_code == 200 and edited.json()["title"] == "Sonata in C"
    for method, url in (
        ("DELETE", path),
        ("GET", f"{path}/access"),
        ("DELETE", f"{path}/access/{student['id']}"),
    ):
        refused = await client.request(method, url, headers=student["auth"])
        assert refused.status_code == 403, (method, url, refused.text)
    bad = await client.post(
        f"{path}/access",
        json={"user_id": "u_nobody", "permission": "view"},
        headers=teacher["auth"],
    )
    assert bad.status_code == 422
    revoked = await client.delete(f"{path}/access/{student['id']}", headers=teacher["auth"])
    assert revoked.status_code == 200
    assert (await client.get(path, headers=student["auth"])).status_code == 404
    # A teacher sees their student's projects; another teacher does not.
    mine = await create_project(client, student["auth"], "My practice")
    await client.post(f"/v1/projects/{mine['id']}/confirm", headers=student["auth"])
    as_teacher = await client.get(f"/v1/projects/{mine['id']}", headers=teacher["auth"])
    assert as_teacher.status_code == 200 and as_teacher.json()["access"] == "teacher"
    assert (
        await client.get(f"/v1/projects/{mine['id']}", headers=other_teacher["auth"])
    ).status_code == 404
    # Pages of the list, then delete: the PDF leaves R2 too.
    first = (await client.get("/v1/projects?limit=1", headers=admin)).json()
    second = (
        await client.get(f"/v1/projects?limit=1&cursor={first['next_cursor']}", headers=admin)
    ).json()
    assert {first["projects"][0]["id"], second["projects"][0]["id"]} == {project["id"], mine["id"]}
    keys = [b.key for b in await mesh.stores["R2"].list(prefix=f"t/{tenant}/uploads/")]
    assert len(keys) == 2
    gone = await client.delete(path, headers=teacher["auth"])
    assert gone.status_code == 200 and (await client.get(path, headers=admin)).status_code == 404
    assert len(await mesh.stores["R2"].list(prefix=f"t/{tenant}/uploads/")) == 1


async def test_confirm_refuses_a_missing_or_fake_pdf(client: httpx.AsyncClient) -> None:
    _, admin = await new_tenant(client, "projects-bad")
    early = await create_project(client, admin, "Early", upload=False)
    refused = await client.post(f"/v1/projects/{early['id']}/confirm", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "upload_missing"
    fake = await create_project(client, admin, "Fake", data=b"not a pdf at all " * 20)
    refused = await client.post(f"/v1/projects/{fake['id']}/confirm", headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "not_a_pdf"
    for body in (
        {"title": "x"},
        {"title": "x", "filename": "a.pdf", "size_bytes": 1, "sha256": "nope"},
    ):
        assert (await client.post("/v1/projects", json=body, headers=admin)).status_code == 422
    assert (await client.get("/v1/projects/prj_nope", headers=admin)).status_code == 404


async def test_a_project_indexed_for_search_and_a_document_from_an_upload(
    client: httpx.AsyncClient,
) -> None:
    tenant, admin = await new_tenant(client, "projects-index")
    teacher = await add_user(client, admin, tenant, "teacher", "t@i.test")
    student = await add_user(client, admin, tenant, "student", "s@i.test")
    theirs = await create_project(client, student["auth"], "Mine")
    refused = await client.post(
        f"/v1/projects/{theirs['id']}/confirm", json={"index": True}, headers=student["auth"]
    )
    assert refused.status_code == 403  # adding to the knowledge base is a writer's
    project = await create_project(client, teacher["auth"], "Lesson handout")
    done = await client.post(
        f"/v1/projects/{project['id']}/confirm",
        json={"index": True, "visibility": "tenant"},
        headers=teacher["auth"],
    )
    assert done.status_code == 200, done.text
    document_id = done.json()["document_id"]
    assert document_id and done.json()["status"] == "ready"
    status = await wait_ready(client, teacher["auth"], document_id)
    assert status["status"] == "ready", status
    found = await client.post("/v1/search", json={"query": "lift"}, headers=student["auth"])
    assert document_id in {h["document_id"] for h in found.json()["results"]}
    again = await client.post(
        f"/v1/projects/{project['id']}/confirm", json={"index": True}, headers=teacher["auth"]
    )
    assert again.json()["document_id"] == document_id  # indexed once
    # Any confirmed direct upload of the caller's can become a document.
    ticket = (
        await client.post(
            "/v1/uploads",
            json={
                "filename": "lesson.pdf",
                "content_type": "application/pdf",
                "size_bytes": len(LESSON),
                "sha256": hashlib.sha256(LESSON).hexdigest(),
            },
            headers=teacher["auth"],
        )
    ).json()
    unconfirmed = await client.post(
        "/v1/documents", json={"upload_id": ticket["upload_id"]}, headers=teacher["auth"]
    )
    assert unconfirmed.status_code == 409
    await client.put(ticket["url"], content=LESSON, headers=ticket["headers"])
    await client.post(f"/v1/uploads/{ticket['upload_id']}/confirm", headers=teacher["auth"])
    stolen = await client.post(
        "/v1/documents", json={"upload_id": ticket["upload_id"]}, headers=admin
    )
    assert stolen.status_code == 404  # someone else's upload
    made = await client.post(
        "/v1/documents",
        json={"upload_id": ticket["upload_id"], "title": "From R2"},
        headers=teacher["auth"],
    )
    assert made.status_code == 202, made.text
    ready = await wait_ready(client, teacher["auth"], made.json()["document_id"])
    assert ready["status"] == "ready"
    both = await client.post(
        "/v1/documents",
        json={"upload_id": ticket["upload_id"], "text": "x", "title": "t"},
        headers=teacher["auth"],
    )
    assert both.status_code == 422
