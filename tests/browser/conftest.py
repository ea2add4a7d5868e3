"""Browser tests of the web console: headless Chromium from Debian (`make browser-tools`
installs it), driven by Playwright for Python, against the real mesh served by uvicorn on a
loopback port (tests.e2e.devserver.serving) — the same bytes a browser gets from `make dev`.

The answer model is the local extractive stand-in (the emulated Workers AI) spoken over the
OpenAI streaming wire, so a test can hold a stream after its first sentence (`GatedModel`) and
see partial text in the page before `done` without any timing assumption. Screenshots of each
step go to tests/browser/artifacts/ (git-ignored); their paths are printed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.devserver import serving
from tests.e2e.openai_wire import completion

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path(os.environ.get("EDGERAG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATOR = "op_browser_" + "x" * 24
GENERATION_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
MODEL_NAME = "extractive-stand-in"
TIMEOUT_MS = 120_000  # generous ceilings for things that happen at once; never timing claims
_SENTENCE = re.compile(r".*?\[\d+\]\s*|.+$", re.S)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


class GatedModel:
    """An OpenAI-compatible provider answering what the extractive stand-in writes, streamed
    piece by piece; with `hold_next`, its next stream waits after the first cited sentence
    until `gate` is set (`held` says it is waiting there)."""

    def __init__(self, ai: Any) -> None:
        self.ai = ai
        self.hold_next = False
        self.gate, self.held = asyncio.Event(), asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        out = await self.ai.run(
            GENERATION_MODEL,
            {"messages": body["messages"], "max_tokens": body.get("max_tokens") or 512},
        )
        text, usage = str(out["response"]), out["usage"]
        counts = (int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
        if not body.get("stream"):
            return completion(text, counts)
        hold, self.hold_next = self.hold_next, False
        pieces = [p for p in _SENTENCE.findall(text) if p]
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_Frames(self, pieces, counts, hold),
        )


class _Frames(httpx.AsyncByteStream):
    def __init__(
        self, model: GatedModel, pieces: list[str], usage: tuple[int, int], hold: bool
    ) -> None:
        self.model, self.pieces, self.usage, self.hold = model, pieces, usage, hold

    @staticmethod
    def _frame(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, piece in enumerate(self.pieces):
            if i == 1 and self.hold:
                self.model.held.set()
                await self.model.gate.wait()
            delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            yield self._frame({"id": "c", "object": "chat.completion.chunk", "choices": [delta]})
            await asyncio.sleep(0)
        prompt, produced = self.usage
        totals = {"prompt_tokens": prompt, "completion_tokens": produced}
        last = {"id": "c", "object": "chat.completion.chunk", "choices": []}
        yield self._frame({**last, "usage": {**totals, "total_tokens": prompt + produced}})
        yield b"data: [DONE]\n\n"


@dataclass
class Console:
    """A served mesh, its operator-made tenant, and the console's URL."""

    base: str
    http: httpx.AsyncClient
    model: GatedModel
    tenant_id: str
    admin_key: str

    @property
    def url(self) -> str:
        return f"{self.base}/console"

    @property
    def admin(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.admin_key}"}

    async def register(self, email: str, password: str, name: str, role: str) -> str:
        body = {"email": email, "password": password, "name": name, "role": role}
        reply = await self.http.post("/v1/auth/register", json=body, headers=self.admin)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    async def login(self, email: str, password: str) -> dict[str, str]:
        body = {"email": email, "password": password, "tenant_id": self.tenant_id}
        reply = await self.http.post("/v1/auth/login", json=body)
        assert reply.status_code == 200, reply.text
        return {"authorization": f"Bearer {reply.json()['access_token']}"}

    async def add_text(self, title: str, text: str) -> str:
        reply = await self.http.post(
            "/v1/documents", json={"title": title, "text": text}, headers=self.admin
        )
        assert reply.status_code == 202, reply.text
        document_id = str(reply.json()["document_id"])
        for _ in range(1200):
            status = (
                await self.http.get(f"/v1/documents/{document_id}/status", headers=self.admin)
            ).json()
            if status["status"] in ("ready", "failed"):
                assert status["status"] == "ready", status
                return document_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"{title} did not become ready")


@pytest.fixture(scope="session")
def ai() -> Any:
    from emulator.ai import EmulatedAI

    return EmulatedAI()


@pytest.fixture
def model(ai: Any) -> GatedModel:
    return GatedModel(ai)


@pytest.fixture
def mesh(tmp_path: Path, ai: Any, model: GatedModel) -> Mesh:
    return build_mesh(
        tmp_path / "edgerag",
        operator_token=OPERATOR,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(model)),
        vars={
            "EDGERAG_LLM_PROVIDERS": "openai",
            "OPENAI_API_KEY": "sk-local",
            "OPENAI_BASE_URL": "https://model.test",
            "EDGERAG_OPENAI_MODEL": MODEL_NAME,
            "EDGERAG_OPENAI_STRUCTURED": "false",
            "EDGERAG_OPENAI_TIMEOUT_S": "600",
            "EDGERAG_PBKDF2_ITERATIONS": "1000",
        },
    )


@pytest.fixture
async def console(mesh: Mesh, model: GatedModel) -> AsyncIterator[Console]:
    async with serving(mesh) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        reply = await http.post(
            "/v1/tenants",
            json={"name": "Browser school"},
            headers={"authorization": f"Bearer {OPERATOR}"},
        )
        assert reply.status_code == 201, reply.text
        created = reply.json()
        try:
            yield Console(base, http, model, created["tenant_id"], created["api_key"])
        finally:
            model.gate.set()  # never leave a stream held open at teardown


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} missing: run `make browser-tools` (apt-get install chromium)"
        if _in_ci():
            pytest.fail(msg)  # CI must never pass by skipping the browser tier
        pytest.skip(msg)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Any:
    """`await shot(page, "01-signin")` → tests/browser/artifacts/<test>/01-signin.png."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    async def shot(page: Any, name: str, **options: Any) -> Path:
        path = folder / f"{name}.png"
        await page.screenshot(path=str(path), **options)
        print(f"screenshot: {path.relative_to(ROOT)}")
        return path

    return shot


async def drop_files(page: Any, selector: str, paths: list[Path]) -> None:
    """Drag files onto `selector` as a person would: dragenter, dragover, then drop with a
    DataTransfer holding the files (the page reads `event.dataTransfer.files`)."""
    kinds = {".pdf": "application/pdf", ".md": "text/markdown", ".txt": "text/plain"}
    files = [
        {
            "name": p.name,
            "type": kinds.get(p.suffix, "application/octet-stream"),
            "data": base64.b64encode(p.read_bytes()).decode(),
        }
        for p in paths
    ]
    transfer = await page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return transfer;
        }""",
        files,
    )
    for event in ("dragenter", "dragover", "drop"):
        await page.dispatch_event(selector, event, {"dataTransfer": transfer})
