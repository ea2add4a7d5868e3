"""Issue 4 bad input over HTTP: the right status, a reason a person can act on, nothing left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh, build_mesh
from emulator.outbound import EmulatedOutbound
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, client_for, new_tenant, wait_ready
from tests.e2e.test_ingestion import assert_offsets_exact, stored_chunks, upload
from tests.fixtures.pdfgen import IMAGE_ONLY, make_pdf, truncate

PDF_PAGES = [
    "Chapter one. Glaciers carve valleys over thousands of years.\nThey leave moraines behind.",
    "Chapter two. Rivers deposit sediment in deltas where they meet the sea.",
    "Chapter three. Wind erosion shapes desert arches and dunes.",
]


async def nothing_stored(mesh: Mesh) -> None:
    db = mesh.stores["DB"]
    for table in ("documents", "document_versions", "chunks", "version_chunks", "idempotency_keys"):
        assert (await db.execute(f"SELECT COUNT(*) AS n FROM {table}")).rows[0]["n"] == 0, table
    assert await mesh.stores["R2"].list("t/") == []


async def test_multipage_pdf_keeps_pages_and_offsets(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "pdf")
    response = await upload(
        client, auth, "earth.pdf", "application/pdf", make_pdf(PDF_PAGES, title="Earth")
    )
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    assert (await wait_ready(client, auth, document_id))["status"] == "ready"
    text, rows = await stored_chunks(mesh, document_id)
    assert_offsets_exact(text, rows)
    detail = (await client.get(f"/v1/documents/{document_id}", headers=auth)).json()
    assert detail["page_count"] == 3 and detail["title"] == "Earth"
    hits = (
        await client.post(
            "/v1/search", json={"query": "deltas sediment rivers", "top_k": 1}, headers=auth
        )
    ).json()
    assert hits["results"][0]["document_id"] == document_id
    # One small chunk spans the document; its page is where it starts.
    assert hits["results"][0]["page"] == 1


@pytest.mark.parametrize(
    ("name", "content_type", "data", "status", "reason"),
    [
        (
            "x.png",
            "image/png",
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            415,
            "unsupported document type",
        ),
        ("x.exe", "application/x-msdownload", b"MZ\x90\x00", 415, "unsupported document type"),
        ("broken.pdf", "application/pdf", truncate(make_pdf(PDF_PAGES), 0.3), 422, "PDF"),
        (
            "locked.pdf",
            "application/pdf",
            make_pdf(PDF_PAGES, encrypt_marker=True),
            422,
            "password",
        ),
        ("scan.pdf", "application/pdf", make_pdf([IMAGE_ONLY, IMAGE_ONLY]), 422, "OCR"),
        ("fake.pdf", "application/pdf", b"this is not a pdf at all", 422, "PDF header"),
        ("empty.txt", "text/plain", b"", 422, "empty"),
        ("blank.txt", "text/plain", b"   \n\n\t  ", 422, "no text"),
        ("latin1.txt", "text/plain", "caf\xe9 cr\xe8me".encode("latin-1"), 422, "UTF-8"),
        ("binary.txt", "text/plain", b"abc\x00\x01\x02def", 422, "NUL"),
        (
            "bad.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK\x03\x04junk",
            422,
            "docx",
        ),
    ],
)
async def test_rejected_uploads_leave_nothing(
    client: httpx.AsyncClient,
    mesh: Mesh,
    name: str,
    content_type: str,
    data: bytes,
    status: int,
    reason: str,
) -> None:
    _, auth = await new_tenant(client, "bad")
    error = assert_error(await upload(client, auth, name, content_type, data), status)
    assert reason.lower() in error["message"].lower(), error
    await nothing_stored(mesh)


async def test_size_limits_give_413(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "sizes")
    too_big = b"a " * (5 * 1024 * 1024 + 1)  # 10 MiB + 2 bytes
    assert_error(await upload(client, auth, "big.txt", "text/plain", too_big), 413)
    # A tenant may lower its own limit.
    assert (
        await client.patch("/v1/settings", json={"max_upload_bytes": 2048}, headers=auth)
    ).status_code == 200
    assert_error(await upload(client, auth, "small.txt", "text/plain", b"word " * 1000), 413)
    assert_error(
        await client.post("/v1/documents", json={"title": "t", "text": "w " * 2000}, headers=auth),
        413,
    )
    await nothing_stored(mesh)


async def test_malformed_multipart_and_fields(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "forms")
    form = {**auth, "content-type": "multipart/form-data; boundary=xyz"}
    assert_error(await client.post("/v1/documents", content=b"--xyz\r\nnope", headers=form), 400)
    no_file = await client.post(
        "/v1/documents", data={"title": "t"}, files={"other": ("a.txt", b"x")}, headers=auth
    )
    assert_error(no_file, 422)
    bad_visibility = await upload(
        client, auth, "a.txt", "text/plain", b"Some text.", visibility="everyone"
    )
    assert "visibility" in assert_error(bad_visibility, 422)["message"]
    bad_tags = await upload(client, auth, "a.txt", "text/plain", b"Some text.", tags="not json")
    assert "tags" in assert_error(bad_tags, 422)["message"]
    await nothing_stored(mesh)


class FakeWeb(httpx.AsyncBaseTransport):
    """The internet, as far as these tests know it (nothing leaves loopback)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/lesson.html":
            html = b"<html><head><title>Tides</title></head><body><p>The moon's gravity causes ocean tides.</p></body></html>"
            return httpx.Response(
                200, content=html, headers={"content-type": "text/html; charset=utf-8"}
            )
        if request.url.path == "/huge":
            return httpx.Response(
                200, content=b"x" * (11 * 1024 * 1024), headers={"content-type": "text/plain"}
            )
        if request.url.path == "/to-private":
            return httpx.Response(302, headers={"location": "http://10.0.0.5/admin"})
        return httpx.Response(404)


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    outbound = EmulatedOutbound(transport=FakeWeb(), resolver=lambda host: ["93.184.216.34"])
    return build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai, outbound=outbound)


async def test_url_documents_and_url_rejections(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "urls")
    response = await client.post(
        "/v1/documents", json={"url": "https://school.example/lesson.html"}, headers=auth
    )
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    assert (await wait_ready(client, auth, document_id))["status"] == "ready"
    detail = (await client.get(f"/v1/documents/{document_id}", headers=auth)).json()
    assert detail["title"] == "Tides"
    assert detail["versions"][0]["source_url"] == "https://school.example/lesson.html"

    await client.delete(f"/v1/documents/{document_id}?purge=true", headers=auth)
    for url, words in [
        ("ftp://school.example/x", "scheme"),
        ("http://127.0.0.1/admin", "public"),
        ("http://169.254.169.254/latest/meta-data", "public"),
        ("http://localhost:8080/", "public"),
        ("https://school.example/to-private", "public"),
        ("https://school.example/huge", "larger"),
        ("https://school.example/missing", "http 404"),
    ]:
        error = assert_error(
            await client.post("/v1/documents", json={"url": url}, headers=auth), 422
        )
        assert words in error["message"].lower(), (url, error)
    await nothing_stored(mesh)


async def test_restart_keeps_documents(data_dir: Path, ai: Any) -> None:
    async with client_for(build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)) as first:
        _, auth = await new_tenant(first, "restart")
        response = await upload(first, auth, "earth.pdf", "application/pdf", make_pdf(PDF_PAGES))
        document_id = response.json()["document_id"]
        await wait_ready(first, auth, document_id)
    async with client_for(build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)) as second:
        hits = (
            await second.post("/v1/search", json={"query": "glaciers moraines"}, headers=auth)
        ).json()
        assert hits["results"][0]["document_id"] == document_id
