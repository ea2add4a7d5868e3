"""The `openai` provider against a real OpenAI-compatible server: llama.cpp's (xllamacpp) on
loopback with SmolLM2-135M-Instruct. The mechanism is asserted — wire format, usage, routing,
the answer pipeline end to end — not the small model's answers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.kv import EmulatedKV
from emulator.mesh import Mesh, build_mesh
from kernel.bindings.env import Bindings
from kernel.domain.prompt_format import format_grounded_prompt
from llm import claims
from llm.generation import system_prompt
from llm.providers import Provider
from llm.streams import Delta, Tokens, open_stream
from tests.e2e.conftest import OPERATOR_TOKEN, ingest, new_tenant
from tests.e2e.devserver import free_port
from tests.e2e.sse import events

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    pytest.importorskip("xllamacpp", reason="make test installs it (requirements/llamacpp.txt)")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.llamacpp", "--port", str(port), "--ctx", "4096"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the model is loaded
        assert line.startswith("ready "), line
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the socket answers a moment after the ready line
            try:
                if httpx.get(f"{base}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama.cpp server did not come up"
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_the_openai_provider_speaks_to_a_real_server(llama_server: str) -> None:
    provider = Provider("openai", "smollm2", llama_server, "")
    b = Bindings("llm", "emulator", SimpleNamespace(), kv=EmulatedKV(None), http=EmulatedHttp())
    done = await provider.complete(
        b,
        "Answer in one short sentence.",
        [{"role": "user", "content": "What color is a clear daytime sky?"}],
        24,
    )
    assert done.text.strip()
    assert 0 < done.completion_tokens <= 24 and done.prompt_tokens > 5


async def test_the_openai_provider_streams_from_a_real_server(llama_server: str) -> None:
    provider = Provider("openai", "smollm2", llama_server, "")
    b = Bindings("llm", "emulator", SimpleNamespace(), kv=EmulatedKV(None), http=EmulatedHttp())
    stream = await open_stream(
        provider,
        b,
        "Answer in two short sentences.",
        [{"role": "user", "content": "What color is a clear daytime sky, and why?"}],
        32,
    )
    pieces = [p async for p in stream]  # ends at llama.cpp's `data: [DONE]` (else: truncated)
    deltas = [p for p in pieces if isinstance(p, Delta)]
    assert len(deltas) >= 2 and "".join(d.text for d in deltas).strip()  # token by token
    usage = [p for p in pieces if isinstance(p, Tokens)]  # stream_options.include_usage
    assert usage and 0 < usage[-1].completion <= 32 and usage[-1].prompt > 5


@pytest.fixture
def mesh(data_dir: Path, ai: Any, llama_server: str) -> Mesh:
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        vars={
            "EDGERAG_LLM_PROVIDERS": "openai",
            "OPENAI_BASE_URL": llama_server,
            "EDGERAG_OPENAI_MODEL": "smollm2",
        },
    )


async def test_answers_run_end_to_end_on_the_real_model(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "llama")
    await ingest(
        client,
        auth,
        "Light",
        "Chlorophyll absorbs red and blue light and reflects green light, so leaves look green.",
    )
    response = await client.post(
        "/v1/answer", json={"query": "Why do leaves look green?"}, headers=auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["generated_by"]["provider"] == "openai"
    assert body["generated_by"]["tried"] == [
        {"provider": "openai", "model": "smollm2", "outcome": "ok"}
    ]
    assert body["usage"]["completion_tokens"] > 0 and body["usage"]["prompt_tokens"] > 20
    # Whatever the small model wrote, only verified quotes survive as citations.
    for citation in body["citations"]:
        assert citation["quote"] in (
            "Chlorophyll absorbs red and blue light and reflects green light, so leaves look green."
        )
    assert body["abstained"] == (not body["citations"])


async def test_chat_streams_from_the_real_model(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "llama-stream")
    text = "Chlorophyll absorbs red and blue light and reflects green light, so leaves look green."
    await ingest(client, auth, "Light", text)
    session = (await client.post("/v1/chat/sessions", json={}, headers=auth)).json()
    async with client.stream(
        "POST",
        f"/v1/chat/sessions/{session['session_id']}/messages",
        json={"content": "Why do leaves look green?", "stream": True},
        headers=auth,
    ) as response:
        assert response.status_code == 200
        got = [e async for e in events(response.aiter_lines())]
    names = [n for n, _ in got]
    assert names[-1] == "done" and "usage" not in names
    done = got[-1][1]
    assert done["generated_by"]["provider"] == "openai" and done["usage"]["completion_tokens"] > 0
    for name, data in got:  # whatever the small model wrote, only verified quotes are cited
        if name == "citation":
            assert data["quote"] in text
    shown = "".join(d["text"] for n, d in got if n == "token").strip()
    assert shown and (done["abstained"] or "[1]" in shown)


async def test_json_schema_output_from_a_real_server(llama_server: str) -> None:
    """`response_format: json_schema` is honoured (llama.cpp turns the schema into a grammar):
    the reply parses as a claims object, streamed or not. Whether the small model's claims
    survive verification is not asserted."""
    provider = Provider("openai", "smollm2", llama_server, "")
    b = Bindings("llm", "emulator", SimpleNamespace(), kv=EmulatedKV(None), http=EmulatedHttp())
    messages = [
        {
            "role": "user",
            "content": format_grounded_prompt(
                ["Chlorophyll absorbs red and blue light and reflects green light."],
                "Which light does chlorophyll absorb?",
            ),
        }
    ]
    system = system_prompt(structured=True)
    done = await provider.complete(b, system, messages, 400, claims.CLAIMS_SCHEMA)
    parsed = claims.parse(done.text)
    assert parsed is not None, done.text
    assert done.completion_tokens > 0
    stream = await open_stream(provider, b, system, messages, 400, claims.CLAIMS_SCHEMA)
    scanner = claims.ClaimScanner()
    found = [
        c for p in [p async for p in stream] if isinstance(p, Delta) for c in scanner.feed(p.text)
    ]
    assert scanner.json is True and claims.parse(scanner.text) is not None, scanner.text
    assert found == (claims.parse(scanner.text) or claims.Parsed([])).claims
