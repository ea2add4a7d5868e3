"""`make dev` for real: a subprocess serving the mesh on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_server_serves_health_and_keeps_its_operator_token(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": "workers:.:emulator/sdk"}
    env.pop("EDGERAG_OPERATOR_TOKEN", None)
    cmd = [sys.executable, "-m", "emulator.dev", "--data-dir", str(tmp_path), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
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

        token = (tmp_path / "operator_token").read_text().strip()
        assert oct((tmp_path / "operator_token").stat().st_mode & 0o777) == "0o600"
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
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert token in out, "the generated operator token is printed for the developer"
