"""The ingest Worker owns the documents table, so it decides who reads and changes a document —
on every single-document route, whatever the gateway did before. These tests skip the gateway
and call the ingest Worker over its service binding with identity headers of our choosing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from kernel.bindings.services import PRINCIPAL_HEADER, ROLE_HEADER, TEACHERS_HEADER, TENANT_HEADER
from tests.e2e.conftest import new_tenant

TEXT = "Canary lesson: the ingest Worker checks visibility itself. Photosynthesis makes sugar."


class Ingest:
    def __init__(self, mesh: Mesh, tenant_id: str) -> None:
        self.service = mesh.stores["INGEST"]
        self.tenant_id = tenant_id

    async def call(
        self,
        method: str,
        path: str,
        who: tuple[str, str] | None,
        teachers: tuple[str, ...] = (),
        body: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"x-request-id": "req_access_test", TENANT_HEADER: tenant_id or self.tenant_id}
        if who is not None:
            headers[PRINCIPAL_HEADER], headers[ROLE_HEADER] = who
        if teachers:
            headers[TEACHERS_HEADER] = ",".join(teachers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        response = await self.service.fetch(method, path, headers=headers, body=data)
        return response.status, json.loads(response.body or b"{}")


ADMIN = ("k_admin", "admin")
ALICE = ("u_alice", "teacher")
BOB = ("u_bob", "teacher")
SAM = ("u_sam", "student")


@pytest.fixture
async def setup(mesh: Mesh, client: httpx.AsyncClient) -> dict[str, Any]:
    tenant_id, _ = await new_tenant(client, "owners")
    other_id, _ = await new_tenant(client, "others")
    ingest = Ingest(mesh, tenant_id)
    docs = {}
    for visibility in ("tenant", "private", "students"):
        status, body = await ingest.call(
            "POST",
            "/documents",
            ALICE,
            body={"title": f"{visibility} lesson", "text": TEXT, "visibility": visibility},
        )
        assert status == 202, body
        docs[visibility] = body["document_id"]
    await mesh.drain()
    return {"ingest": ingest, "docs": docs, "other": other_id}


async def test_reads_follow_visibility_and_hide_what_they_refuse(setup: dict[str, Any]) -> None:
    ingest, docs = setup["ingest"], setup["docs"]
    for route in ("/documents/{id}", "/documents/{id}/status"):
        path = route.format(id=docs["private"])
        status, body = await ingest.call("GET", path, SAM)
        assert status == 404 and body["error"]["message"] == f"document {docs['private']} not found"
        assert (await ingest.call("GET", path, BOB))[0] == 404  # another teacher's private one
        assert (await ingest.call("GET", path, ALICE))[0] == 200  # the owner
        assert (await ingest.call("GET", path, ADMIN))[0] == 200
        students = route.format(id=docs["students"])
        assert (await ingest.call("GET", students, SAM))[0] == 404  # not Alice's student
        assert (await ingest.call("GET", students, SAM, teachers=("u_alice",)))[0] == 200
        shared = route.format(id=docs["tenant"])
        assert (await ingest.call("GET", shared, SAM))[0] == 200


async def test_writes_need_a_writer_role_and_ownership(setup: dict[str, Any]) -> None:
    ingest, docs = setup["ingest"], setup["docs"]
    shared = f"/documents/{docs['tenant']}"
    new_version = {"title": "changed", "text": TEXT + " Bob was here."}
    for method, path, body in (
        ("PUT", shared, new_version),
        ("DELETE", shared, None),
        ("POST", f"{shared}/restore", None),
    ):
        status, error = await ingest.call(method, path, BOB, body=body)
        assert status == 403 and "own" in error["error"]["message"], (method, error)
        status, error = await ingest.call(method, path, SAM, body=body)
        assert status == 403 and "roles" in error["error"]["message"], (method, error)
    # Bob can't even tell that Alice's private document exists.
    assert (await ingest.call("DELETE", f"/documents/{docs['private']}", BOB))[0] == 404
    status, unchanged = await ingest.call("GET", shared, ALICE)
    assert (
        status == 200 and unchanged["title"] == "tenant lesson" and unchanged["deleted_at"] is None
    )
    assert (await ingest.call("DELETE", shared, ALICE))[0] == 200  # the owner may
    assert (await ingest.call("POST", f"{shared}/restore", ADMIN))[0] == 200  # so may admins


async def test_another_tenant_and_a_caller_without_identity_see_nothing(
    setup: dict[str, Any],
) -> None:
    ingest, docs = setup["ingest"], setup["docs"]
    for doc in docs.values():
        for method in ("GET", "DELETE"):
            assert (
                await ingest.call(method, f"/documents/{doc}", ADMIN, tenant_id=setup["other"])
            )[0] == 404
        status, _ = await ingest.call("GET", f"/documents/{doc}", None)
        assert status == 404 or doc == docs["tenant"], doc  # no principal: tenant-wide only
