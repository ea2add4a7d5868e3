"""`kill -9` of the real dev server mid-ingest, restart on the same data dir: the job resumes.

Issue 9, defect 1: the document stayed `processing` forever because nothing ran the ingest
sweep. Now the dev server fires each Worker's cron (`scheduled`) at start and on schedule; the
restart must finish the document with every chunk exactly once (D1 rows, FTS rows, vectors).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.devserver import DevServer

WORDS = [
    *("glacier", "moraine", "crevasse", "serac", "cirque", "fjord", "erratic", "drumlin"),
    *("esker", "kame", "tarn", "arete", "col", "nunatak", "ablation", "accumulation", "firn"),
    *("neve", "calving", "outwash", "till", "striation", "plucking"),
]


def _long_text(paragraphs: int) -> str:
    """Distinct paragraphs (~75 words each): a few hundred chunks of 200 tokens."""
    out = []
    for i in range(paragraphs):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(70)]
        out.append(f"Section {i}. Paragraph {i} of the field notes: " + " ".join(words) + ".")
    return "\n\n".join(out)


def _status(client: httpx.Client, document_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/documents/{document_id}/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _count(path: Path, sql: str, params: tuple[Any, ...] = ()) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(sql, params).fetchone()[0])


def test_sigkill_mid_ingest_then_restart_finishes_the_document_exactly_once(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "edgerag"
    log_path = tmp_path / "dev.log"
    text = _long_text(260)
    with log_path.open("w") as log:
        first = DevServer(data_dir, log)
        try:
            first.wait_healthy()
            token = (data_dir / "operator_token").read_text().strip()
            created = httpx.post(
                f"{first.base}/v1/tenants",
                json={"name": "crash"},
                headers={"authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            tenant_id = created.json()["tenant_id"]
            auth = {"authorization": f"Bearer {created.json()['api_key']}"}
            with httpx.Client(base_url=first.base, headers=auth, timeout=30) as client:
                doc = client.post("/v1/documents", json={"title": "Field notes", "text": text})
                assert doc.status_code == 202, doc.text
                document_id = doc.json()["document_id"]
                deadline = time.monotonic() + 120
                while True:  # until a slice has been stored but not the whole document
                    status = _status(client, document_id)
                    done, total = status["progress"]["done"], status["progress"]["total"]
                    if 0 < done < total:
                        break
                    assert status["status"] in ("queued", "processing"), status
                    assert time.monotonic() < deadline, status
                    time.sleep(0.05)
            assert total >= 200, f"{total} chunks: the document is too small to be mid-ingest"
            first.kill()  # the job dies holding its lease
        finally:
            first.stop()

        d1 = data_dir / "d1" / "edgerag.sqlite"
        stored_before = _count(
            d1, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", (document_id,)
        )
        assert 0 < stored_before < total
        assert _count(d1, "SELECT COUNT(*) FROM document_versions WHERE status = 'processing'") == 1

        second = DevServer(data_dir, log)
        try:
            second.wait_healthy()
            with httpx.Client(base_url=second.base, headers=auth, timeout=30) as client:
                deadline = time.monotonic() + 120
                while (status := _status(client, document_id))["status"] != "ready":
                    assert status["status"] in ("queued", "processing"), status
                    assert time.monotonic() < deadline, status
                    time.sleep(0.1)
                assert status["progress"] == {"done": total, "total": total}, status
                detail = client.get(f"/v1/documents/{document_id}")
                assert detail.status_code == 200 and detail.json()["chunk_count"] == total
                # The last section (embedded only after the restart) is searchable.
                hits = client.post(
                    "/v1/search",
                    json={"query": "Section 259 Paragraph 259 field notes", "top_k": 5},
                )
                assert hits.status_code == 200, hits.text
                assert any("Section 259." in h["text"] for h in hits.json()["results"]), hits.json()
        finally:
            second.stop()

    # After the server stopped: every chunk once in D1, in FTS and in Vectorize — nothing lost,
    # nothing doubled.
    chunk_ids = "SELECT id FROM chunks WHERE document_id = ?1"
    assert _count(d1, "SELECT COUNT(*) FROM chunks WHERE document_id = ?", (document_id,)) == total
    placements = "SELECT COUNT(*) FROM version_chunks WHERE document_id = ?"
    assert _count(d1, placements, (document_id,)) == total
    fts = f"SELECT COUNT(*) FROM chunks_fts WHERE chunk_id IN ({chunk_ids})"
    assert _count(d1, fts, (document_id,)) == total
    fts_distinct = (
        f"SELECT COUNT(DISTINCT chunk_id) FROM chunks_fts WHERE chunk_id IN ({chunk_ids})"
    )
    assert _count(d1, fts_distinct, (document_id,)) == total
    vectors_db = data_dir / "vectorize" / "edgerag-chunks.sqlite"
    with sqlite3.connect(d1) as db:
        ids = {r[0] for r in db.execute(chunk_ids, (document_id,))}
    with sqlite3.connect(vectors_db) as db:
        stored = [
            (r[0], json.loads(r[1]))
            for r in db.execute(
                "SELECT id, metadata FROM vectors WHERE namespace = ?", (tenant_id,)
            )
        ]
    assert len(stored) == total and {i for i, _ in stored} == ids
    assert all(m["document_id"] == document_id for _, m in stored)
    events = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    sweeps = [e for e in events if e.get("event") == "ingest_sweep" and e.get("resumed")]
    assert sweeps, "the restart resumed the job through the ingest Worker's cron handler"


def test_a_second_dev_server_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    """Releasing every lease found at start is only safe because no other live process can hold
    one: the data directory is locked for the server's lifetime."""
    data_dir = tmp_path / "edgerag"
    with (tmp_path / "first.log").open("w") as log1, (tmp_path / "second.log").open("w") as log2:
        first = DevServer(data_dir, log1)
        try:
            first.wait_healthy()
            second = DevServer(data_dir, log2)
            try:
                assert second.proc.wait(timeout=60) != 0, "the second server must exit"
            finally:
                second.stop()
            assert "another dev server is using" in second.output(), second.output()
            assert httpx.get(f"{first.base}/health", timeout=10).status_code == 200
        finally:
            first.stop()
    # The lock goes with its holder (after SIGKILL too: the restart test above).
    with (tmp_path / "third.log").open("w") as log3:
        third = DevServer(data_dir, log3)
        try:
            third.wait_healthy()
        finally:
            third.stop()
