"""Issue 9, ingest: huge tokens, failures mid-job, zip bombs, caller-scoped idempotency, PUT metadata.

Each test drives the in-process mesh over HTTP and then checks what D1, R2 and Vectorize hold.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from ingest.chunking import MAX_CHUNK_CHARS
from kernel.bindings.inference import EMBEDDING_MODEL
from kernel.bindings.ports import BindingError, BindingLimitError
from tests.e2e.conftest import assert_error, ingest, new_tenant, wait_ready
from tests.e2e.identity import add_user, tuned_mesh
from tests.fixtures.docxgen import repeated_docx

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class FlakyAI:
    """The local AI, except that chosen embedding calls raise (counted from 1)."""

    adapter_kind = "emulator"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.fail_calls: set[int] = set()
        self.error: Exception = BindingError("AI: upstream model unavailable")
        self.embedded = 0

    async def run(self, model: str, inputs: Any) -> dict[str, Any]:
        if model == EMBEDDING_MODEL:
            self.calls += 1
            if self.calls in self.fail_calls:
                raise self.error
            self.embedded += len(inputs["text"])
        return dict(await self.inner.run(model, inputs))

    def describe(self) -> dict[str, Any]:
        return dict(self.inner.describe())


@pytest.fixture
def flaky(ai: Any) -> FlakyAI:
    return FlakyAI(ai)


@pytest.fixture
def mesh(data_dir: Path, flaky: FlakyAI) -> Mesh:
    return tuned_mesh(data_dir, flaky)


# `client` is conftest's: it picks up this module's `mesh`.


async def count(mesh: Mesh, sql: str, *params: Any) -> int:
    return int((await mesh.stores["DB"].execute(sql, params)).rows[0]["n"])


async def status_after_drain(
    client: httpx.AsyncClient, mesh: Mesh, auth: dict[str, str], document_id: str
) -> dict[str, Any]:
    """Status once every background task has finished: no polling, no timing."""
    await mesh.drain()
    response = await client.get(f"/v1/documents/{document_id}/status", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def upload(
    client: httpx.AsyncClient, auth: dict[str, str], name: str, content_type: str, data: bytes
) -> httpx.Response:
    return await client.post(
        "/v1/documents", files={"file": (name, data, content_type)}, headers=auth
    )


# --- defect 3: one long token ---------------------------------------------------------------
async def test_markdown_with_a_huge_base64_line_becomes_ready(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "blob")
    blob = base64.b64encode(random.Random(9).randbytes(1_900_000)).decode()  # one 2.5 MB line
    markdown = (
        "# Lab notes\n\nThe cuvette absorbance rose after adding the enzyme.\n\n"
        f"![spectrum](data:image/png;base64,{blob})\n\nWe repeated the assay three times.\n"
    )
    response = await upload(client, auth, "notes.md", "text/markdown", markdown.encode())
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    status = await status_after_drain(client, mesh, auth, document_id)
    assert status["status"] == "ready", status
    rows = (
        await mesh.stores["DB"].execute(
            "SELECT length(text) AS chars, text FROM chunks WHERE document_id = ?1", (document_id,)
        )
    ).rows
    assert rows and all(r["chars"] <= MAX_CHUNK_CHARS for r in rows)
    assert not any(blob[:64] in r["text"] for r in rows), "the encoded image is not indexed"
    hits = (
        await client.post("/v1/search", json={"query": "enzyme absorbance cuvette"}, headers=auth)
    ).json()["results"]
    assert hits and hits[0]["document_id"] == document_id


# --- any failure in a job: `failed` with a reason, nothing half-written -----------------------
FACTS = "\n\n".join(f"Fact {i}: the {i}th element of the sequence is unusual." for i in range(250))


async def small_chunks(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    settings = await client.patch(
        "/v1/settings", json={"chunk_tokens": 24, "chunk_overlap": 0}, headers=auth
    )
    assert settings.status_code == 200, settings.text


async def assert_nothing_indexed(mesh: Mesh, document_id: str) -> None:
    for table in ("chunks", "version_chunks"):
        assert (
            await count(
                mesh, f"SELECT COUNT(*) AS n FROM {table} WHERE document_id = ?1", document_id
            )
            == 0
        ), table
    assert await count(mesh, "SELECT COUNT(*) AS n FROM chunks_fts") == 0
    tenant = (
        await mesh.stores["DB"].execute(
            "SELECT tenant_id FROM documents WHERE id = ?1", (document_id,)
        )
    ).rows[0]["tenant_id"]
    probe = await mesh.stores["VECTORIZE"].query([0.1] * 384, top_k=50, namespace=tenant)
    assert probe == [], "no vector of the failed version is left"


async def test_a_permanent_failure_mid_job_fails_at_once_and_leaves_nothing(
    client: httpx.AsyncClient, mesh: Mesh, flaky: FlakyAI
) -> None:
    _, auth = await new_tenant(client, "fails")
    await small_chunks(client, auth)
    flaky.fail_calls = {2}  # the first slice of 100 chunks is embedded and stored, then …
    flaky.error = BindingLimitError("AI.run: input rejected by the model")
    response = await client.post(
        "/v1/documents", json={"title": "Facts", "text": FACTS}, headers=auth
    )
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    status = await status_after_drain(client, mesh, auth, document_id)
    assert status["status"] == "failed", status
    assert "input rejected by the model" in status["error"]
    assert "upload" in status["error"].lower(), "says what to do next"
    await assert_nothing_indexed(mesh, document_id)
    search = await client.post("/v1/search", json={"query": "unusual element"}, headers=auth)
    assert search.json()["results"] == []


async def test_a_transient_failure_is_reported_while_it_retries_then_fails(
    client: httpx.AsyncClient, mesh: Mesh, flaky: FlakyAI
) -> None:
    _, auth = await new_tenant(client, "flaky")
    await small_chunks(client, auth)
    flaky.fail_calls = {2, 3, 4}  # every attempt dies after its first slice
    response = await client.post(
        "/v1/documents", json={"title": "Facts", "text": FACTS}, headers=auth
    )
    document_id = response.json()["document_id"]
    status = await status_after_drain(client, mesh, auth, document_id)
    assert status["status"] == "processing"
    assert "upstream model unavailable" in status["error"] and "retr" in status["error"], status
    for _ in range(2):  # what the cron does once the lease has lapsed
        await mesh.sweep()
        status = await status_after_drain(client, mesh, auth, document_id)
    assert status["status"] == "failed" and "upstream model unavailable" in status["error"]
    await assert_nothing_indexed(mesh, document_id)


async def test_a_document_that_fails_can_be_sent_again(
    client: httpx.AsyncClient, mesh: Mesh, flaky: FlakyAI
) -> None:
    _, auth = await new_tenant(client, "again")
    flaky.fail_calls = {1}
    flaky.error = BindingLimitError("AI.run: input rejected by the model")
    body = {"title": "Tides", "text": "The moon's gravity raises the ocean tides twice a day."}
    first = await client.post("/v1/documents", json=body, headers=auth)
    document_id = first.json()["document_id"]
    assert (await status_after_drain(client, mesh, auth, document_id))["status"] == "failed"
    again = await client.put(f"/v1/documents/{document_id}", json=body, headers=auth)
    assert again.status_code == 202, again.text
    assert (await wait_ready(client, auth, document_id))["status"] == "ready"


# --- Idempotency-Key belongs to the caller -----------------------------------------------------
async def test_idempotency_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    tenant_id, admin = await new_tenant(client, "keys")
    ada = await add_user(client, admin, tenant_id, "teacher", "ada@school.org")
    bob = await add_user(client, admin, tenant_id, "teacher", "bob@school.org")
    body = {"title": "Marks", "text": "Private notes on the exam marks.", "visibility": "private"}
    key = {"idempotency-key": "lesson-1"}
    first = await client.post("/v1/documents", json=body, headers={**ada["auth"], **key})
    assert first.status_code == 202, first.text
    ada_doc = first.json()["document_id"]

    theirs = await client.post("/v1/documents", json=body, headers={**bob["auth"], **key})
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["document_id"] != ada_doc, "Bob never learns Ada's private id"
    bob_doc = theirs.json()["document_id"]
    # Each caller's replay still finds their own document.
    again = await client.post("/v1/documents", json=body, headers={**bob["auth"], **key})
    assert again.status_code == 200 and again.json()["document_id"] == bob_doc
    mine = await client.post("/v1/documents", json=body, headers={**ada["auth"], **key})
    assert mine.status_code == 200 and mine.json()["document_id"] == ada_doc
    # An API key is a caller of its own too.
    via_key = await client.post("/v1/documents", json=body, headers={**admin, **key})
    assert via_key.status_code == 202 and via_key.json()["document_id"] not in (ada_doc, bob_doc)
    await mesh.drain()
    assert await count(mesh, "SELECT COUNT(*) AS n FROM documents") == 3


# --- PUT: omitted fields keep their value; metadata-only changes are applied -------------------
CELLS = "Mitochondria release energy in cells. Ribosomes build proteins from amino acids."


async def put(
    client: httpx.AsyncClient, auth: dict[str, str], document_id: str, **body: Any
) -> httpx.Response:
    return await client.put(f"/v1/documents/{document_id}", json=body, headers=auth)


async def detail(client: httpx.AsyncClient, auth: dict[str, str], document_id: str) -> Any:
    return (await client.get(f"/v1/documents/{document_id}", headers=auth)).json()


async def test_put_without_a_title_keeps_the_title(
    client: httpx.AsyncClient, mesh: Mesh, flaky: FlakyAI
) -> None:
    _, auth = await new_tenant(client, "put-title")
    doc = await ingest(client, auth, "Cells", CELLS, tags=["bio"])
    changed = await put(client, auth, doc["document_id"], text=CELLS + " Lysosomes digest waste.")
    assert changed.status_code == 202, changed.text
    assert (await wait_ready(client, auth, doc["document_id"]))["status"] == "ready"
    after = await detail(client, auth, doc["document_id"])
    assert after["title"] == "Cells" and after["tags"] == ["bio"] and after["live_version"] == 2
    # A file PUT without a title keeps it too.
    files = {"file": ("cells.txt", b"Chloroplasts capture light.", "text/plain")}
    response = await client.put(f"/v1/documents/{doc['document_id']}", files=files, headers=auth)
    assert response.status_code == 202, response.text
    await wait_ready(client, auth, doc["document_id"])
    assert (await detail(client, auth, doc["document_id"]))["title"] == "Cells"


async def test_put_with_the_same_content_updates_title_tags_and_metadata(
    client: httpx.AsyncClient, mesh: Mesh, flaky: FlakyAI
) -> None:
    _, auth = await new_tenant(client, "put-meta")
    doc = await ingest(client, auth, "Cells", CELLS)
    embedded = flaky.embedded
    response = await put(
        client,
        auth,
        doc["document_id"],
        title="Cell biology",
        text=CELLS,
        tags=["bio", "year-9"],
        metadata={"unit": 3},
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1 and response.json()["unchanged"] is True
    after = await detail(client, auth, doc["document_id"])
    assert after["title"] == "Cell biology"
    assert after["tags"] == ["bio", "year-9"] and after["metadata"] == {"unit": 3}
    assert [v["version"] for v in after["versions"]] == [1], "metadata is not a new version"
    await mesh.drain()
    assert flaky.embedded == embedded, "nothing re-embedded"
    hits = await client.post(
        "/v1/search",
        json={"query": "ribosomes proteins", "filters": {"tags": ["year-9"]}},
        headers=auth,
    )
    assert [h["document_id"] for h in hits.json()["results"]] == [doc["document_id"]]
    assert hits.json()["results"][0]["title"] == "Cell biology"
    # Sending exactly what is stored is still a no-op.
    same = await put(client, auth, doc["document_id"], text=CELLS)
    assert same.status_code == 200 and same.json()["unchanged"] is True
    assert (await detail(client, auth, doc["document_id"]))["title"] == "Cell biology"


async def test_put_cannot_silently_change_visibility(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "put-vis")
    doc = await ingest(client, auth, "Cells", CELLS)
    error = assert_error(
        await put(client, auth, doc["document_id"], text=CELLS, visibility="private"), 422
    )
    assert "visibility" in error["message"]
    same = await put(client, auth, doc["document_id"], text=CELLS, visibility="tenant")
    assert same.status_code == 200, same.text
    assert (await detail(client, auth, doc["document_id"]))["visibility"] == "tenant"


# --- defect 4: what one document may become ------------------------------------------------
PARAGRAPH = b"<w:p><w:r><w:t>The glacier moved a few metres every year.</w:t></w:r></w:p>"


async def nothing_written(mesh: Mesh) -> None:
    for table in ("documents", "document_versions", "chunks", "version_chunks"):
        assert await count(mesh, f"SELECT COUNT(*) AS n FROM {table}") == 0, table
    assert await mesh.stores["R2"].list("t/") == []


async def test_a_docx_zip_bomb_is_refused_naming_the_limit(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "bomb")
    bomb = repeated_docx(PARAGRAPH, 60 * 1024 * 1024 // len(PARAGRAPH))  # 60 MB of XML
    assert len(bomb) < 1024 * 1024
    error = assert_error(await upload(client, auth, "bomb.docx", DOCX_TYPE, bomb), 413)
    assert error["code"] == "document_too_large"
    assert "max_inflated_bytes" in error["message"], error
    await nothing_written(mesh)


async def test_text_and_chunk_limits_are_per_tenant_and_named(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "limits")
    _, other = await new_tenant(client, "roomy")
    settings = (await client.get("/v1/settings", headers=auth)).json()
    assert settings["max_inflated_bytes"] > 0 and settings["max_chunks"] > 0
    assert settings["max_text_chars"] > 0
    lowered = await client.patch(
        "/v1/settings", json={"max_text_chars": 20_000, "max_chunks": 3}, headers=auth
    )
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["max_text_chars"] == 20_000 and lowered.json()["max_chunks"] == 3
    too_high = await client.patch(
        "/v1/settings", json={"max_chunks": settings["max_chunks"] + 1}, headers=auth
    )
    assert "max_chunks" in assert_error(too_high, 422)["message"]

    docx = repeated_docx(PARAGRAPH, 1000)  # ~43,000 characters of text
    error = assert_error(await upload(client, auth, "long.docx", DOCX_TYPE, docx), 413)
    assert "max_text_chars" in error["message"]
    many = "\n\n".join(f"Fact {i}: glaciers carve valleys over many years." for i in range(100))
    error = assert_error(
        await client.post("/v1/documents", json={"title": "Facts", "text": many}, headers=auth),
        413,
    )
    assert "max_chunks" in error["message"]
    await nothing_written(mesh)
    # Another tenant keeps the deployment's limits.
    accepted = await upload(client, other, "long.docx", DOCX_TYPE, docx)
    assert accepted.status_code == 202, accepted.text
    await wait_ready(client, other, accepted.json()["document_id"])
