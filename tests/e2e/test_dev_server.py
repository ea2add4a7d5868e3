"""`make dev` for real: a subprocess serving the mesh on a loopback port."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.devserver import DevServer


def test_dev_server_serves_health_and_keeps_its_operator_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "edgerag"
    with (tmp_path / "dev.log").open("w") as log:
        server = DevServer(data_dir, log)
        try:
            server.wait_healthy(60)
            port = server.port
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            assert response is not None and response.status_code == 200, response
            assert {w["worker"] for w in response.json()["workers"]} == {
                "gateway",
                "rag",
                "ingest",
                "llm",
            }
            # HEAD over a real socket: the GET's status and headers, no body (monitors use it).
            head = httpx.head(f"http://127.0.0.1:{port}/health", timeout=30)
            assert head.status_code == 200 and head.content == b"", head
            assert head.headers["content-type"].startswith("application/json")

            token = (data_dir / "operator_token").read_text().strip()
            assert oct((data_dir / "operator_token").stat().st_mode & 0o777) == "0o600"
            created = httpx.post(
                f"http://127.0.0.1:{port}/v1/tenants",
                json={"name": "dev"},
                headers={"authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert created.status_code == 201, created.text

            # A real client over a real socket: ingest, then a streamed chat answer parsed as SSE.
            base = f"http://127.0.0.1:{port}"
            auth = {"authorization": f"Bearer {created.json()['api_key']}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
                doc = client.post(
                    "/v1/documents",
                    json={"title": "Moon", "text": "The Moon's gravity raises ocean tides."},
                )
                assert doc.status_code == 202, doc.text
                deadline = time.monotonic() + 60
                while (
                    client.get(f"/v1/documents/{doc.json()['document_id']}/status").json()["status"]
                    != "ready"
                ):
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                session = client.post("/v1/chat/sessions", json={}).json()["session_id"]
                kinds = []
                with client.stream(
                    "POST",
                    f"/v1/chat/sessions/{session}/messages",
                    json={"content": "What raises tides?", "stream": True},
                ) as response:
                    assert response.headers["content-type"].startswith("text/event-stream")
                    for line in response.iter_lines():
                        if line.startswith("event: "):
                            kinds.append(line.removeprefix("event: "))
                assert kinds[0] == "token" and "citation" in kinds and kinds[-1] == "done", kinds
        finally:
            server.stop()
        out = server.output()
    assert token in out, "the generated operator token is printed for the developer"


def test_dev_server_runs_piper_and_piper_dies_with_it(tmp_path: Path) -> None:
    """`make dev` speaks: it starts Piper as its own process, and a dev server that is killed
    (even by SIGKILL) takes it down — no orphaned speech server on the machine."""
    import re

    with (tmp_path / "dev.log").open("w") as log:
        server = DevServer(tmp_path / "edgerag", log)
        try:
            server.wait_healthy(120)
            found = re.search(
                r"text to speech: piper at (http://127\.0\.0\.1:\d+)", server.output()
            )
            assert found, server.output()
            piper = found.group(1)
            assert httpx.get(f"{piper}/health", timeout=5).status_code == 200
        finally:
            server.kill()  # SIGKILL: no cleanup code of the dev server runs
    deadline = time.monotonic() + 30  # a hang guard, not a timing claim
    while True:
        try:
            httpx.get(f"{piper}/health", timeout=1)
        except httpx.TransportError:
            break  # nobody listens any more
        assert time.monotonic() < deadline, "the Piper process outlived the dev server"
        time.sleep(0.2)
