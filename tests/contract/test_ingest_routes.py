"""The ingest Worker's internal routes against their contract (kernel.contracts.ingest): each
request is built from its model, sent over the emulated service binding to the real Worker, and
each reply must be exactly its model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from emulator.mesh import Mesh
from kernel.contracts import ingest as contract
from tests.contract.internal_routes import WorkerClient, assert_is
from tests.e2e.conftest import new_tenant

LESSON_PDF = (Path(__file__).resolve().parents[2] / "examples" / "lesson.pdf").read_bytes()
TEXT = "The mitochondrion is the powerhouse of the cell. It makes ATP from glucose and oxygen."


@pytest.fixture
async def worker(mesh: Mesh, client: httpx.AsyncClient) -> WorkerClient:
    tenant_id, _ = await new_tenant(client, "contract")
    return WorkerClient(mesh.stores["INGEST"], tenant_id, ("u_teacher", "teacher"))


async def _accepted(worker: WorkerClient, mesh: Mesh) -> contract.DocumentAccepted:
    request = contract.JsonDocument(title="Cells", text=TEXT, tags=["bio"])
    status, body, _ = await worker.call("POST", "/documents", request)
    assert status == 202, body
    accepted = assert_is(contract.DocumentAccepted, body)
    await mesh.drain()
    return accepted


async def test_create_and_replace(worker: WorkerClient, mesh: Mesh) -> None:
    accepted = await _accepted(worker, mesh)
    assert accepted.version == 1 and accepted.status == "queued"
    replace = contract.JsonDocument(title="Cells", text=TEXT + " Ribosomes make proteins.")
    status, body, _ = await worker.call("PUT", f"/documents/{accepted.document_id}", replace)
    assert status == 202 and assert_is(contract.DocumentAccepted, body).version == 2
    await mesh.drain()
    status, body, _ = await worker.call("PUT", f"/documents/{accepted.document_id}", replace)
    unchanged = assert_is(contract.DocumentAccepted, body)
    assert status == 200 and unchanged.unchanged


async def test_list_detail_and_status(worker: WorkerClient, mesh: Mesh) -> None:
    accepted = await _accepted(worker, mesh)
    status, body, _ = await worker.call("GET", "/documents?limit=5")
    listed = assert_is(contract.DocumentList, body)
    assert status == 200 and [d.id for d in listed.documents] == [accepted.document_id]
    for row in body["documents"]:
        assert_is(contract.DocumentSummary, row)
    status, body, _ = await worker.call("GET", f"/documents/{accepted.document_id}")
    detail = assert_is(contract.DocumentDetail, body)
    assert status == 200 and detail.status == "ready" and detail.tags == ["bio"]
    for version in body["versions"]:
        assert_is(contract.VersionInfo, version)
    status, body, _ = await worker.call("GET", f"/documents/{accepted.document_id}/status")
    progress = assert_is(contract.DocumentStatus, body)
    assert status == 200 and progress.status == "ready"
    assert_is(contract.Progress, body["progress"])


async def test_patch_and_sections(worker: WorkerClient, mesh: Mesh) -> None:
    accepted = await _accepted(worker, mesh)
    path = f"/documents/{accepted.document_id}"
    change = contract.DocumentPatch(tags=["cells", "bio"], metadata={"subject": "biology"})
    status, body, _ = await worker.call("PATCH", path, change)
    detail = assert_is(contract.DocumentDetail, body)
    assert status == 200 and detail.tags == ["bio", "cells"] and detail.metadata["subject"]
    status, body, _ = await worker.call("PATCH", path, {})
    assert status == 422  # nothing to change
    status, body, _ = await worker.call("GET", f"{path}/sections?max_chars=30")
    outline = assert_is(contract.DocumentSections, body)
    assert status == 200 and outline.text_length == len(TEXT)
    assert outline.section is not None and outline.section.text == TEXT[:30]
    assert outline.section.truncated
    status, body, _ = await worker.call("GET", f"{path}/sections?whole=true&max_chars=20000")
    whole = assert_is(contract.DocumentSections, body).section
    assert whole is not None and whole.text == TEXT and not whole.truncated
    status, body, _ = await worker.call("GET", f"{path}/sections?section=Nowhere")
    assert status == 404


async def test_upload_tickets(worker: WorkerClient, mesh: Mesh) -> None:
    import hashlib

    data = b"%PDF-1.4 tiny"
    ask = contract.CreateUpload(
        filename="a.pdf",
        content_type="application/pdf",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    status, body, _ = await worker.call("POST", "/uploads", ask)
    ticket = assert_is(contract.UploadTicket, body)
    assert status == 201 and ticket.headers["if-none-match"] == "*"
    status, body, _ = await worker.call("POST", f"/uploads/{ticket.upload_id}/confirm")
    assert status == 409 and body["error"]["code"] == "upload_missing"
    await mesh.stores["R2"].put(
        f"t/{worker.tenant_id}/uploads/{ticket.upload_id}", data, content_type="application/pdf"
    )
    status, body, _ = await worker.call("POST", f"/uploads/{ticket.upload_id}/confirm")
    assert status == 200 and assert_is(contract.UploadStatus, body).status == "confirmed"
    status, body, _ = await worker.call("GET", f"/uploads/{ticket.upload_id}/download")
    assert status == 200 and assert_is(contract.DownloadTicket, body).url.startswith("http")


async def test_project_routes(worker: WorkerClient, mesh: Mesh) -> None:
    import hashlib

    pdf = LESSON_PDF
    ask = contract.CreateProject(
        title="Sonata",
        filename="s.pdf",
        size_bytes=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
    )
    status, body, _ = await worker.call("POST", "/projects", ask)
    created = assert_is(contract.ProjectCreated, body)
    assert status == 201 and created.project.status == "pending"
    path = f"/projects/{created.project.id}"
    await mesh.stores["R2"].put(
        f"t/{worker.tenant_id}/uploads/{created.upload.upload_id}",
        pdf,
        content_type="application/pdf",
    )
    status, body, _ = await worker.call("POST", f"{path}/confirm")
    assert status == 200 and assert_is(contract.Project, body).page_count == 2
    status, body, _ = await worker.call("GET", "/projects?limit=5")
    assert assert_is(contract.ProjectList, body).projects[0].id == created.project.id
    status, body, _ = await worker.call("PUT", path, contract.ProjectChange(title="Sonata II"))
    assert assert_is(contract.Project, body).title == "Sonata II"
    status, body, _ = await worker.call("GET", path)
    assert status == 200
    status, body, _ = await worker.call(
        "POST", f"{path}/access", {"user_id": "u_x", "permission": "view"}
    )
    assert status == 422  # no such user
    status, body, _ = await worker.call("GET", f"{path}/access")
    assert assert_is(contract.GrantList, body).grants == []
    status, body, _ = await worker.call("DELETE", f"{path}/access/u_x")
    assert status == 404
    status, body, _ = await worker.call("DELETE", path)
    assert status == 200 and body["deleted"] is True


async def test_delete_restore_and_purge(worker: WorkerClient, mesh: Mesh) -> None:
    accepted = await _accepted(worker, mesh)
    path = f"/documents/{accepted.document_id}"
    status, body, _ = await worker.call("DELETE", path)
    assert status == 200 and assert_is(contract.DocumentDeleted, body).deleted
    status, body, _ = await worker.call("POST", f"{path}/restore")
    assert status == 200 and assert_is(contract.DocumentRestored, body).deleted is False
    status, body, _ = await worker.call("DELETE", f"{path}?purge=true")
    assert status == 200 and assert_is(contract.DocumentDeleted, body).purged


async def test_settings(worker: WorkerClient) -> None:
    status, body, _ = await worker.call("GET", "/settings")
    current = assert_is(contract.EffectiveSettings, body)
    worker.principal = ("k_admin", "admin")
    change = contract.TenantSettings(chunk_tokens=128)
    status, body, _ = await worker.call("PATCH", "/settings", change)
    changed = assert_is(contract.EffectiveSettings, body)
    assert status == 200 and changed.chunk_tokens == 128
    assert changed.max_chunks == current.max_chunks


async def test_internal_continue_and_sweep(worker: WorkerClient, mesh: Mesh) -> None:
    accepted = await _accepted(worker, mesh)
    ref = contract.JobRef(document_id=accepted.document_id, version=accepted.version)
    status, body, _ = await worker.call("POST", "/internal/ingest/continue", ref)
    assert status == 202 and assert_is(contract.JobScheduled, body).scheduled
    await mesh.drain()
    status, body, _ = await worker.call("POST", "/internal/ingest/sweep", {})
    assert status == 200 and assert_is(contract.SweepResult, body).resumed == 0


def test_every_ingest_route_has_a_contract_test() -> None:
    from types import SimpleNamespace

    from ingest.app import build_app

    routes = {(r.method, r.pattern) for r in build_app(SimpleNamespace()).router.routes}
    covered: set[tuple[str, str]] = {
        ("POST", "/documents"),
        ("PUT", "/documents/{document_id}"),
        ("GET", "/documents"),
        ("GET", "/documents/{document_id}"),
        ("GET", "/documents/{document_id}/status"),
        ("PATCH", "/documents/{document_id}"),
        ("GET", "/documents/{document_id}/sections"),
        ("POST", "/projects"),
        ("GET", "/projects"),
        ("GET", "/projects/{project_id}"),
        ("PUT", "/projects/{project_id}"),
        ("DELETE", "/projects/{project_id}"),
        ("POST", "/projects/{project_id}/confirm"),
        ("POST", "/projects/{project_id}/access"),
        ("GET", "/projects/{project_id}/access"),
        ("DELETE", "/projects/{project_id}/access/{user_id}"),
        # tests/contract/test_workspace_routes.py
        ("POST", "/annotations"),
        ("GET", "/annotations"),
        ("GET", "/annotations/{annotation_id}"),
        ("PATCH", "/annotations/{annotation_id}"),
        ("DELETE", "/annotations/{annotation_id}"),
        ("POST", "/recordings"),
        ("GET", "/recordings"),
        ("GET", "/recordings/{recording_id}"),
        ("DELETE", "/recordings/{recording_id}"),
        ("POST", "/recordings/{recording_id}/confirm"),
        ("POST", "/recordings/{recording_id}/analysis"),
        ("GET", "/recordings/{recording_id}/analysis"),
        ("GET", "/recordings/{recording_id}/analysis/{analysis_id}"),
        ("POST", "/uploads"),
        ("POST", "/uploads/{upload_id}/confirm"),
        ("GET", "/uploads/{upload_id}/download"),
        ("DELETE", "/documents/{document_id}"),
        ("POST", "/documents/{document_id}/restore"),
        ("GET", "/settings"),
        ("PATCH", "/settings"),
        ("POST", "/internal/ingest/continue"),
        ("POST", "/internal/ingest/sweep"),
        ("GET", "/internal/health"),  # the shared health contract (kernel.contracts.health)
        ("GET", "/internal/metrics"),  # Prometheus text, not JSON
    }
    assert routes == covered
