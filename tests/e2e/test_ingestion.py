"""Ingestion over HTTP: formats, exact offsets, incremental versions, deletes, resumable jobs."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from docx import Document

from emulator.mesh import Mesh, build_mesh
from kernel.bindings.inference import EMBEDDING_MODEL
from kernel.runtime.logs import set_sink
from tests.e2e.conftest import (
    OPERATOR_TOKEN,
    assert_error,
    client_for,
    ingest,
    new_tenant,
    wait_ready,
)

PARAGRAPHS = [
    f"Section {i}. The mitochondrion is the powerhouse of the cell in lesson {i}. "
    f"Students measure ATP output under condition {i} and record the results carefully."
    for i in range(40)
]
LONG_TEXT = "\n\n".join(PARAGRAPHS)


class CountingAI:
    """Wraps the local AI: records embedded texts; can hold or fail embeddings of chosen texts."""

    adapter_kind = "emulator"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.embedded: list[str] = []
        self.hold: tuple[str, asyncio.Event] | None = None  # (marker, released)
        self.fail_on: tuple[str, Exception] | None = None  # (marker, error)

    async def run(self, model: str, inputs: Any) -> dict[str, Any]:
        texts = inputs.get("text") if model == EMBEDDING_MODEL else None
        if isinstance(texts, list):
            if self.fail_on and any(self.fail_on[0] in t for t in texts):
                raise self.fail_on[1]
            if self.hold and any(self.hold[0] in t for t in texts):
                await self.hold[1].wait()
            self.embedded.extend(texts)
        return dict(await self.inner.run(model, inputs))

    def describe(self) -> dict[str, Any]:
        return dict(self.inner.describe())


@pytest.fixture
def counting(ai: Any) -> CountingAI:
    return CountingAI(ai)


@pytest.fixture
def mesh(data_dir: Path, counting: CountingAI) -> Mesh:
    return build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=counting)


async def stored_chunks(mesh: Mesh, document_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The live version's extracted text (from R2) and its chunk placements (from D1)."""
    db = mesh.stores["DB"]
    doc = (
        await db.execute(
            "SELECT tenant_id, live_version FROM documents WHERE id = ?1", (document_id,)
        )
    ).rows[0]
    version = (
        await db.execute(
            "SELECT text_key FROM document_versions WHERE document_id = ?1 AND version = ?2",
            (document_id, doc["live_version"]),
        )
    ).rows[0]
    blob = await mesh.stores["R2"].get(version["text_key"])
    text = json.loads(blob.data)["text"]
    rows = (
        await db.execute(
            "SELECT vc.*, c.text FROM version_chunks vc JOIN chunks c ON c.tenant_id = vc.tenant_id"
            " AND c.id = vc.chunk_id WHERE vc.document_id = ?1 AND vc.version = ?2 ORDER BY vc.position",
            (document_id, doc["live_version"]),
        )
    ).rows
    return text, rows


def assert_offsets_exact(text: str, rows: list[dict[str, Any]]) -> None:
    assert rows
    for row in rows:
        assert text[row["char_start"] : row["char_end"]] == row["text"], row["position"]


def docx_bytes() -> bytes:
    document = Document()
    document.add_heading("Genetics", level=1)
    document.add_paragraph("Genes are made of DNA. Alleles are variants of a gene.")
    document.add_heading("Inheritance", level=2)
    document.add_paragraph("Mendel studied pea plants and found dominant and recessive traits.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FILES = {
    "notes.txt": (
        "text/plain",
        b"Osmosis moves water across a membrane. Diffusion spreads particles.",
    ),
    "guide.md": (
        "text/markdown",
        b"# Ecology\n\n## Food webs\n\nProducers make energy from sunlight.\n",
    ),
    "page.html": (
        "text/html",
        b"<html><head><title>Volcanoes</title><script>evil()</script></head><body><nav>Menu</nav>"
        b"<h1>Volcanoes</h1><p>Magma rises through the crust and erupts as lava.</p></body></html>",
    ),
    "genetics.docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        docx_bytes(),
    ),
}


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    name: str,
    content_type: str,
    data: bytes,
    **fields: str,
) -> httpx.Response:
    return await client.post(
        "/v1/documents", files={"file": (name, data, content_type)}, data=fields, headers=auth
    )


async def test_every_format_over_multipart_with_exact_offsets(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "formats")
    for name, (content_type, data) in FILES.items():
        response = await upload(client, auth, name, content_type, data, tags='["science"]')
        assert response.status_code == 202, (name, response.text)
        document_id = response.json()["document_id"]
        assert (await wait_ready(client, auth, document_id))["status"] == "ready", name
        text, rows = await stored_chunks(mesh, document_id)
        assert_offsets_exact(text, rows)
        detail = (await client.get(f"/v1/documents/{document_id}", headers=auth)).json()
        assert detail["tags"] == ["science"] and detail["versions"][0]["filename"] == name
    hits = (
        await client.post("/v1/search", json={"query": "recessive traits pea plants"}, headers=auth)
    ).json()
    top = hits["results"][0]
    assert top["heading_path"] == ["Genetics"]  # the path where the chunk starts
    assert "Mendel" in top["text"]
    html_hits = (
        await client.post("/v1/search", json={"query": "magma lava crust"}, headers=auth)
    ).json()
    assert html_hits["results"][0]["title"] == "Volcanoes"
    assert (
        "evil" not in html_hits["results"][0]["text"]
        and "Menu" not in html_hits["results"][0]["text"]
    )


async def test_unchanged_reupload_does_no_work(
    client: httpx.AsyncClient, mesh: Mesh, counting: CountingAI
) -> None:
    _, auth = await new_tenant(client, "incremental")
    doc = await ingest(client, auth, "Cells", LONG_TEXT)
    db = mesh.stores["DB"]
    before = await db.execute(
        "SELECT (SELECT COUNT(*) FROM chunks) + (SELECT COUNT(*) FROM version_chunks) AS n"
    )
    embedded_before = len(counting.embedded)
    response = await client.put(
        f"/v1/documents/{doc['document_id']}",
        json={"title": "Cells", "text": LONG_TEXT},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "document_id": doc["document_id"],
        "version": 1,
        "status": "ready",
        "unchanged": True,
    }
    await mesh.drain()
    after = await db.execute(
        "SELECT (SELECT COUNT(*) FROM chunks) + (SELECT COUNT(*) FROM version_chunks) AS n"
    )
    assert len(counting.embedded) == embedded_before, "nothing re-embedded"
    assert after.rows == before.rows, "nothing written"
    assert (await db.execute("SELECT COUNT(*) AS n FROM document_versions")).rows[0]["n"] == 1


async def test_changed_document_reembeds_only_changed_chunks(
    client: httpx.AsyncClient, mesh: Mesh, counting: CountingAI
) -> None:
    _, auth = await new_tenant(client, "versions")
    doc = await ingest(client, auth, "Cells", LONG_TEXT)
    _, v1_rows = await stored_chunks(mesh, doc["document_id"])
    changed = LONG_TEXT.replace(
        "condition 39 and record", "condition 39 with a zebrafish and record"
    )
    counting.embedded.clear()
    response = await client.put(
        f"/v1/documents/{doc['document_id']}",
        json={"title": "Cells v2", "text": changed},
        headers=auth,
    )
    assert response.status_code == 202 and response.json()["version"] == 2
    assert (await wait_ready(client, auth, doc["document_id"]))["status"] == "ready"
    text, v2_rows = await stored_chunks(mesh, doc["document_id"])
    assert_offsets_exact(text, v2_rows)
    new_ids = {r["chunk_id"] for r in v2_rows} - {r["chunk_id"] for r in v1_rows}
    assert 0 < len(counting.embedded) == len(new_ids) < len(v2_rows)
    assert all("zebrafish" in t for t in counting.embedded)
    hits = (await client.post("/v1/search", json={"query": "zebrafish"}, headers=auth)).json()[
        "results"
    ]
    assert hits and hits[0]["version"] == 2 and "zebrafish" in hits[0]["text"]
    detail = (await client.get(f"/v1/documents/{doc['document_id']}", headers=auth)).json()
    assert [v["status"] for v in detail["versions"]] == ["superseded", "ready"] and detail[
        "title"
    ] == "Cells v2"
    # The superseded version's unique chunks are gone from Vectorize too.
    gone = {r["chunk_id"] for r in v1_rows} - {r["chunk_id"] for r in v2_rows}
    assert gone and await mesh.stores["VECTORIZE"].get_by_ids(sorted(gone)) == []


async def test_version_switch_is_atomic_for_readers(
    client: httpx.AsyncClient, counting: CountingAI
) -> None:
    _, auth = await new_tenant(client, "atomic")
    doc = await ingest(
        client, auth, "Plants", "Plants use chlorophyll to absorb sunlight in their leaves."
    )
    released = asyncio.Event()
    counting.hold = ("Fungi", released)  # hold the new version mid-processing
    response = await client.put(
        f"/v1/documents/{doc['document_id']}",
        json={
            "title": "Plants",
            "text": "Fungi absorb nutrients from decaying matter in the soil.",
        },
        headers=auth,
    )
    assert response.status_code == 202
    for _ in range(5):
        status = (
            await client.get(f"/v1/documents/{doc['document_id']}/status", headers=auth)
        ).json()
        assert status["status"] in ("queued", "processing") and status["live_version"] == 1
        hits = (
            await client.post("/v1/search", json={"query": "fungi chlorophyll"}, headers=auth)
        ).json()["results"]
        assert [h["version"] for h in hits] == [1], "readers see exactly the old version"
        await asyncio.sleep(0.02)
    released.set()
    assert (await wait_ready(client, auth, doc["document_id"]))["status"] == "ready"
    hits = (
        await client.post("/v1/search", json={"query": "fungi chlorophyll"}, headers=auth)
    ).json()["results"]
    assert [h["version"] for h in hits] == [2] and "Fungi" in hits[0]["text"]


async def test_soft_delete_restore_and_purge(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "deletes")
    doc = await ingest(client, auth, "Stars", "Stars fuse hydrogen into helium in their cores.")
    document_id = doc["document_id"]

    async def found() -> bool:
        hits = (
            await client.post("/v1/search", json={"query": "hydrogen helium fusion"}, headers=auth)
        ).json()
        return any(h["document_id"] == document_id for h in hits["results"])

    assert await found()
    assert (await client.delete(f"/v1/documents/{document_id}", headers=auth)).status_code == 200
    assert not await found()
    assert_error(await client.get(f"/v1/documents/{document_id}", headers=auth), 404)
    assert (
        await client.post(f"/v1/documents/{document_id}/restore", headers=auth)
    ).status_code == 200
    assert await found()

    _, rows = await stored_chunks(mesh, document_id)
    chunk_ids = [r["chunk_id"] for r in rows]
    answered = await client.post("/v1/answer", json={"query": "What do stars fuse?"}, headers=auth)
    assert "hydrogen" in answered.json()["answer"]
    assert await mesh.stores["KV"].list("t/") != []  # the answer and search are cached
    assert (await client.delete(f"/v1/documents/{document_id}?purge=true", headers=auth)).json()[
        "purged"
    ]
    assert not await found()
    assert await mesh.stores["VECTORIZE"].get_by_ids(chunk_ids) == []
    db = mesh.stores["DB"]
    for table in ("documents", "document_versions", "chunks", "version_chunks", "chunks_fts"):
        assert (await db.execute(f"SELECT COUNT(*) AS n FROM {table}")).rows[0]["n"] == 0, table
    assert await mesh.stores["R2"].list("t/") == []
    for key in (await mesh.stores["KV"].list("t/")).keys:
        assert "hydrogen" not in (await mesh.stores["KV"].get(key) or ""), (
            f"{key} still quotes the document"
        )
    assert_error(await client.post(f"/v1/documents/{document_id}/restore", headers=auth), 404)


async def test_idempotency_key(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "idem")
    headers = {**auth, "idempotency-key": "upload-123"}
    body = {"title": "T", "text": "Rivers carry sediment to the sea."}
    first = await client.post("/v1/documents", json=body, headers=headers)
    second = await client.post("/v1/documents", json=body, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["document_id"] == first.json()["document_id"] and second.json()["replayed"]
    other = await client.post("/v1/documents", json={**body, "text": "Different."}, headers=headers)
    assert_error(other, 409, "idempotency_key_reused")
    await mesh.drain()
    assert (await mesh.stores["DB"].execute("SELECT COUNT(*) AS n FROM documents")).rows[0][
        "n"
    ] == 1


async def test_long_document_continues_across_invocations(
    data_dir: Path, counting: CountingAI
) -> None:
    mesh = build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=counting,
        vars={"EDGERAG_INGEST_SLICE_SECONDS": "0"},
    )
    lines: list[str] = []
    set_sink(lines.append)
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "long")
        # Small chunks keep the test quick while still needing three embedding slices.
        settings = await client.patch(
            "/v1/settings", json={"chunk_tokens": 24, "chunk_overlap": 0}, headers=auth
        )
        assert settings.status_code == 200 and settings.json()["chunk_tokens"] == 24, settings.text
        text = "\n\n".join(
            f"Fact {i}: the {i}th element of the sequence is unusual." for i in range(250)
        )
        doc = await ingest(client, auth, "Long", text)
        status = (
            await client.get(f"/v1/documents/{doc['document_id']}/status", headers=auth)
        ).json()
        assert status["progress"]["done"] == status["progress"]["total"] > 100
    await mesh.drain()
    set_sink(None)
    events = [json.loads(line) for line in lines]
    handovers = [e for e in events if e["event"] == "ingest_handed_over"]
    continues = [
        e
        for e in events
        if e["event"] == "request" and e.get("route") == "/internal/ingest/continue"
    ]
    assert len(handovers) >= 2 and len(continues) == len(handovers), (
        "each slice handed over to a new invocation"
    )


async def test_failed_processing_reports_reason_and_leaves_nothing(
    client: httpx.AsyncClient, mesh: Mesh, counting: CountingAI
) -> None:
    _, auth = await new_tenant(client, "fails")
    counting.fail_on = ("Section", RuntimeError("model crashed"))
    response = await client.post(
        "/v1/documents", json={"title": "T", "text": LONG_TEXT}, headers=auth
    )
    document_id = response.json()["document_id"]
    for _ in range(3):  # each attempt releases its lease; the sweeper (cron) retries
        await mesh.drain()
        await asyncio.sleep(0)
        db = mesh.stores["DB"]
        await db.execute(
            "UPDATE document_versions SET lease_until = NULL WHERE document_id = ?1", (document_id,)
        )
        await mesh.sweep()
    await mesh.drain()
    status = (await client.get(f"/v1/documents/{document_id}/status", headers=auth)).json()
    assert status["status"] == "failed" and "model crashed" in status["error"]
    db = mesh.stores["DB"]
    assert (await db.execute("SELECT COUNT(*) AS n FROM version_chunks")).rows[0]["n"] == 0
    assert (await db.execute("SELECT COUNT(*) AS n FROM chunks")).rows[0]["n"] == 0


async def test_crash_mid_document_resumes_from_where_it_stopped(
    data_dir: Path, counting: CountingAI
) -> None:
    mesh = build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=counting)
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "crash")
        counting.hold = ("Section 2", asyncio.Event())  # never released: the process "dies" here
        response = await client.post(
            "/v1/documents", json={"title": "T", "text": LONG_TEXT * 3}, headers=auth
        )
        document_id = response.json()["document_id"]
        await asyncio.sleep(0.1)
    # "Crash": the process dies with the job holding its lease; nothing is left running.
    for task in list(mesh.ctx.pending):
        task.cancel()
    await asyncio.gather(*mesh.ctx.pending, return_exceptions=True)
    counting.hold = None
    db = mesh.stores["DB"]
    row = (
        await db.execute(
            "SELECT status FROM document_versions WHERE document_id = ?1", (document_id,)
        )
    ).rows[0]
    assert row["status"] == "processing"
    await db.execute(
        "UPDATE document_versions SET lease_until = 0 WHERE document_id = ?1", (document_id,)
    )

    restarted = build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=counting)
    lines: list[str] = []
    set_sink(lines.append)
    try:
        await restarted.scheduled("ingest")  # the Worker's cron handler, as the runtime fires it
    finally:
        set_sink(None)
    sweeps = [e for e in map(json.loads, lines) if e["event"] == "ingest_sweep"]
    assert [e["resumed"] for e in sweeps] == [1]
    async with client_for(restarted) as client:
        assert (await wait_ready(client, auth, document_id))["status"] == "ready"
        text, rows = await stored_chunks(restarted, document_id)
        assert_offsets_exact(text, rows)
    await restarted.drain()
