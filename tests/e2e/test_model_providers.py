"""The model layer end to end over HTTP: a grounded answer from a provider speaking its real
wire format (a transport-level fake), fallback down the chain on overload, the cool-down shared
by the next requests, /health naming each provider's state, and 503 when nobody can answer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, ingest, new_tenant

TEXT = (
    "Chlorophyll absorbs red and blue light and reflects green light. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen."
)
QUESTION = "Which light does chlorophyll absorb?"


class FakeAnthropic:
    """`POST /v1/messages` as Anthropic answers it; `mode` picks the behaviour."""

    def __init__(self) -> None:
        self.mode, self.calls = "ok", 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        assert request.url.path == "/v1/messages" and request.headers["x-api-key"] == "sk-fake"
        if self.mode == "overloaded":
            body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return httpx.Response(529, json=body)
        prompt = json.loads(request.content)["messages"][-1]["content"]
        assert "Chlorophyll absorbs red and blue light" in prompt  # the retrieved source
        sentence = "Chlorophyll absorbs red and blue light and reflects green light."
        return httpx.Response(
            200,
            json={
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": "claude-fake",
                "content": [{"type": "text", "text": f"{sentence} [1]"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 120, "output_tokens": 14},
            },
        )


@pytest.fixture
def anthropic() -> FakeAnthropic:
    return FakeAnthropic()


@pytest.fixture
def mesh(data_dir: Path, ai: Any, anthropic: FakeAnthropic) -> Mesh:
    http = EmulatedHttp(httpx.MockTransport(anthropic))
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=http,
        vars={
            "EDGERAG_LLM_PROVIDERS": "anthropic,workers-ai",
            "ANTHROPIC_API_KEY": "sk-fake",
            "ANTHROPIC_BASE_URL": "https://anthropic.fake",
            "EDGERAG_ANTHROPIC_MODEL": "claude-fake",
        },
    )


async def _setup(client: httpx.AsyncClient) -> dict[str, str]:
    _, auth = await new_tenant(client, "models")
    await ingest(client, auth, "Light", TEXT)
    return auth


async def test_the_first_provider_answers_with_verified_citations(
    client: httpx.AsyncClient, anthropic: FakeAnthropic
) -> None:
    auth = await _setup(client)
    response = await client.post("/v1/answer", json={"query": QUESTION}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["generated_by"] == {
        "provider": "anthropic",
        "model": "claude-fake",
        "tried": [{"provider": "anthropic", "model": "claude-fake", "outcome": "ok"}],
    }
    assert body["usage"] == {"prompt_tokens": 120, "completion_tokens": 14, "total_tokens": 134}
    assert body["citations"][0]["quote"].startswith("Chlorophyll absorbs red and blue light")
    assert not body["abstained"]


async def test_overload_falls_back_and_the_cool_down_spares_the_next_requests(
    client: httpx.AsyncClient, anthropic: FakeAnthropic
) -> None:
    auth = await _setup(client)
    anthropic.mode = "overloaded"
    first = await client.post("/v1/answer", json={"query": QUESTION}, headers=auth)
    assert first.status_code == 200, first.text
    tried = first.json()["generated_by"]["tried"]
    assert [(t["provider"], t["outcome"]) for t in tried] == [
        ("anthropic", "overloaded"),
        ("workers-ai", "ok"),
    ]
    assert anthropic.calls == 3  # one call and two retries before moving on
    health = (await client.get("/health")).json()
    llm = next(w for w in health["workers"] if w["worker"] == "llm")
    state = {p["name"]: p for p in llm["providers"]}
    assert state["anthropic"]["state"] == "cooling_down"
    assert state["anthropic"]["last_error"] == "overloaded"
    assert state["workers-ai"]["state"] == "available"
    # Another question (not cached): the resting provider is not called again.
    second = await client.post(
        "/v1/answer", json={"query": "What does photosynthesis make?"}, headers=auth
    )
    assert second.status_code == 200
    assert second.json()["generated_by"]["tried"][0]["outcome"] == "cooling_down"
    assert anthropic.calls == 3


async def test_nobody_to_answer_is_a_503_with_retry_after(
    data_dir: Path, ai: Any, anthropic: FakeAnthropic
) -> None:
    anthropic.mode = "overloaded"
    mesh = build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(anthropic)),
        vars={
            "EDGERAG_LLM_PROVIDERS": "anthropic",
            "ANTHROPIC_API_KEY": "sk-fake",
            "ANTHROPIC_BASE_URL": "https://anthropic.fake",
        },
    )
    from tests.e2e.conftest import client_for

    async with client_for(mesh) as client:
        auth = await _setup(client)
        response = await client.post("/v1/answer", json={"query": QUESTION}, headers=auth)
        assert_error(response, 503, "provider_unavailable")
        assert 0 < int(response.headers["retry-after"]) <= 300
        assert "sk-fake" not in response.text
        assert re.search(r"anthropic: overloaded", response.json()["error"]["message"])
    await mesh.drain()


def test_provider_keys_reach_only_the_llm_worker(mesh: Mesh) -> None:
    for worker, env in mesh.envs.items():
        has_key = getattr(env, "ANTHROPIC_API_KEY", None) == "sk-fake"
        assert has_key == (worker == "llm"), worker
        assert getattr(env, "EDGERAG_LLM_PROVIDERS", None) == "anthropic,workers-ai"


def test_dev_vars_are_read_like_wrangler_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulator.dev import model_settings

    dev_vars = tmp_path / ".dev.vars"
    dev_vars.write_text(
        "# local model server\n"
        'EDGERAG_LLM_PROVIDERS="openai,workers-ai"\n'
        "OPENAI_BASE_URL=http://127.0.0.1:8081\n"
        "EDGERAG_OPENAI_MODEL='smollm2'\n"
        "UNRELATED=ignored\n"
    )
    monkeypatch.setenv("EDGERAG_OPENAI_MODEL", "from-env")
    assert model_settings(dev_vars) == {
        "EDGERAG_LLM_PROVIDERS": "openai,workers-ai",
        "OPENAI_BASE_URL": "http://127.0.0.1:8081",
        "EDGERAG_OPENAI_MODEL": "from-env",
    }
