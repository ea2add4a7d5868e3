"""Workspace routes against their contracts (kernel.contracts.workspaces, .analyzer, .llm):
the ingest Worker's annotations, recordings and analyses, the rag Worker's feedback and the llm
Worker's /analyze — requests from the models, replies held to them exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from kernel.contracts import analyzer, llm
from kernel.contracts import workspaces as ws
from kernel.contracts.rag import CACHED_HEADER, USAGE_HEADER
from tests.contract.internal_routes import WorkerClient, assert_is
from tests.e2e.conftest import new_tenant
from tests.e2e.workspace_helpers import analyzing_mesh, practice_take

LESSON_PDF = (Path(__file__).resolve().parents[2] / "examples" / "lesson.pdf").read_bytes()
TAKE = practice_take(seconds=4.0)
GUIDE = "Tempo stability improves when you practice slowly with a metronome every day."


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return analyzing_mesh(data_dir, ai)[0]


@pytest.fixture
async def ingest(mesh: Mesh, client: httpx.AsyncClient) -> WorkerClient:
    tenant_id, _ = await new_tenant(client, "workspace-contract")
    return WorkerClient(mesh.stores["INGEST"], tenant_id, ("u_teacher", "teacher"))


async def _put(mesh: Mesh, worker: WorkerClient, upload_id: str, data: bytes, kind: str) -> None:
    key = f"t/{worker.tenant_id}/uploads/{upload_id}"
    await mesh.stores["R2"].put(key, data, content_type=kind)


async def test_annotations(ingest: WorkerClient, mesh: Mesh) -> None:
    status, body, _ = await ingest.call(
        "POST",
        "/projects",
        {
            "title": "Score",
            "filename": "s.pdf",
            "size_bytes": len(LESSON_PDF),
            "sha256": hashlib.sha256(LESSON_PDF).hexdigest(),
        },
    )
    project = body["project"]["id"]
    await _put(mesh, ingest, body["upload"]["upload_id"], LESSON_PDF, "application/pdf")
    assert (await ingest.call("POST", f"/projects/{project}/confirm"))[0] == 200
    note = {"project_id": project, "page": 1, "kind": "note", "x": 0.5, "y": 0.5, "text": "Hi"}
    status, body, _ = await ingest.call("POST", "/annotations", note)
    created = assert_is(ws.Annotation, body)
    assert status == 201 and created.kind == "note" and created.mine
    status, body, _ = await ingest.call("GET", f"/annotations?project_id={project}&page=1")
    assert [a.id for a in assert_is(ws.AnnotationList, body).annotations] == [created.id]
    path = f"/annotations/{created.id}"
    status, body, _ = await ingest.call("GET", path)
    assert status == 200 and assert_is(ws.Annotation, body).shape["text"] == "Hi"
    status, body, _ = await ingest.call("PATCH", path, {"text": "Hello"})
    assert status == 200 and assert_is(ws.Annotation, body).shape["text"] == "Hello"
    status, body, _ = await ingest.call("DELETE", path)
    assert status == 200 and body == {"annotation_id": created.id, "deleted": True}


async def test_recordings_and_analyses(ingest: WorkerClient, mesh: Mesh) -> None:
    ask = ws.CreateRecording(
        title="Take",
        filename="take.wav",
        content_type="audio/wav",
        size_bytes=len(TAKE),
        sha256=hashlib.sha256(TAKE).hexdigest(),
    )
    status, body, _ = await ingest.call("POST", "/recordings", ask)
    created = assert_is(ws.RecordingCreated, body)
    assert status == 201 and created.recording.status == "pending"
    await _put(mesh, ingest, body["upload"]["upload_id"], TAKE, "audio/wav")
    path = f"/recordings/{created.recording.id}"
    status, body, _ = await ingest.call("POST", f"{path}/confirm")
    ready = assert_is(ws.Recording, body)
    assert status == 200 and ready.status == "ready" and ready.channels == 1
    status, body, _ = await ingest.call("GET", "/recordings?status=ready&format=wav")
    assert [r.id for r in assert_is(ws.RecordingList, body).recordings] == [ready.id]
    status, body, _ = await ingest.call("POST", f"{path}/analysis")
    run = assert_is(ws.Analysis, body)
    assert status == 201 and run.status == "done" and run.dimensions
    for d in body["dimensions"]:
        assert_is(ws.MeasuredDimension, d)
    status, body, _ = await ingest.call("GET", f"{path}/analysis")
    assert [a.id for a in assert_is(ws.AnalysisList, body).analyses] == [run.id]
    status, body, _ = await ingest.call("GET", f"{path}/analysis/{run.id}")
    assert status == 200 and assert_is(ws.Analysis, body).id == run.id
    status, body, _ = await ingest.call("GET", path)
    assert assert_is(ws.Recording, body).latest_analysis is not None

    rag = WorkerClient(mesh.stores["RAG"], ingest.tenant_id, ingest.principal)
    status, body, _ = await ingest.call("POST", "/documents", {"title": "Guide", "text": GUIDE})
    await mesh.drain()
    status, body, headers = await rag.call("POST", f"{path}/feedback", ws.FeedbackRequest())
    made = assert_is(ws.Feedback, body)
    assert status == 201 and made.analysis_id == run.id and int(headers[USAGE_HEADER]) > 0
    assert_is(ws.Statement, body["overall"])
    status, body, headers = await rag.call("POST", f"{path}/feedback", {})
    assert status == 200 and assert_is(ws.Feedback, body).cached
    assert headers[CACHED_HEADER] == "true" and headers[USAGE_HEADER] == "0"
    status, body, _ = await rag.call("GET", f"{path}/feedback")
    assert [f.id for f in assert_is(ws.FeedbackList, body).feedback] == [made.id]
    status, body, _ = await ingest.call("DELETE", path)
    assert status == 200 and body == {"recording_id": ready.id, "deleted": True}


async def test_llm_analyze(ingest: WorkerClient, mesh: Mesh) -> None:
    worker = WorkerClient(mesh.stores["LLM"], ingest.tenant_id, ingest.principal)
    ref = analyzer.RecordingRef(
        id="rec_" + "0" * 24,
        url="http://127.0.0.1:8787/r2/edgerag-originals/nothing",
        content_type="audio/wav",
        size_bytes=10,
        sha256="0" * 64,
        format="wav",
        duration_s=1.0,
        sample_rate=8000,
        channels=1,
    )
    ask = llm.AnalyzeRequest(
        request=analyzer.AnalyzerRequest(
            recording=ref, dimensions=[analyzer.Dimension(name="loudness", label="Loudness")]
        )
    )
    status, body, _ = await worker.call("POST", "/analyze", ask)
    # The local analyzer cannot fetch an object that is not there: the analyzer's failure.
    assert status == 502 and body["error"]["code"] == "analyzer_failed"
    status, body, _ = await worker.call("POST", "/analyze", {"request": {}})
    assert status == 422
