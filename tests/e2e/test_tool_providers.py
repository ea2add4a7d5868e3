"""Tools on real provider wire formats (transport-level fakes): what each provider is asked,
what is kept of a misbehaving model's output, timeouts, token budgets, and the register of
answers following the reader's level."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN, ingest, new_tenant
from tests.e2e.openai_wire import completion

TEXT = (
    "Chlorophyll absorbs red and blue light and reflects green light. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen."
)
FIRST = "Chlorophyll absorbs red and blue light and reflects green light."


class Fakes:
    """Anthropic `/v1/messages` and an OpenAI-compatible `/v1/chat/completions`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.anthropic_input: dict[str, Any] = {}
        self.openai_content = ""
        self.delay_s = 0.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        self.bodies.append({"path": request.url.path, **sent})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if request.url.path == "/v1/messages":
            tool = sent["tools"][0]["name"]
            block = {
                "type": "tool_use",
                "id": "toolu_1",
                "name": tool,
                "input": self.anthropic_input,
            }
            return httpx.Response(
                200,
                json={
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-fake",
                    "content": [block],
                    "stop_reason": "tool_use",
                    "usage": {"input_tokens": 300, "output_tokens": 40},
                },
            )
        return completion(self.openai_content, (200, 30))


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def provider_mesh(data_dir: Path, ai: Any, fakes: Fakes, chain: str, **extra: str) -> Mesh:
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(fakes)),
        vars={
            "EDGERAG_LLM_PROVIDERS": chain,
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            "ANTHROPIC_BASE_URL": "https://anthropic.fake",
            "EDGERAG_ANTHROPIC_MODEL": "claude-fake",
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": "https://openai.fake",
            "EDGERAG_OPENAI_MODEL": "fake-model",
            **extra,
        },
    )


@pytest.fixture
def mesh(data_dir: Path, ai: Any, fakes: Fakes) -> Mesh:
    return provider_mesh(data_dir, ai, fakes, "anthropic")


async def test_anthropic_summary_is_a_forced_tool_and_its_invented_claims_are_dropped(
    client: httpx.AsyncClient, fakes: Fakes
) -> None:
    _, auth = await new_tenant(client, "summaries")
    doc = await ingest(client, auth, "Light", TEXT)
    fakes.anthropic_input = {
        "claims": [
            {"text": "Chlorophyll takes in red and blue light.", "source": 1, "quote": FIRST},
            {"text": "Leaves are made of cheese.", "source": 1, "quote": "made of cheese"},
            {"text": "Roots drink milk.", "source": 4, "quote": "milk"},
        ]
    }
    response = await client.post(
        "/v1/tools/summarize", json={"document_id": doc["document_id"]}, headers=auth
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    sent = fakes.bodies[-1]
    assert sent["tool_choice"] == {"type": "tool", "name": "summarize_sources"}
    assert "Summarize the sources in at most 3 sentences." in sent["messages"][-1]["content"]
    assert [s["text"] for s in result["sentences"]] == ["Chlorophyll takes in red and blue light."]
    assert result["dropped_sentences"] == 2 and result["citations"][0]["quote"] == FIRST
    assert result["generated_by"]["provider"] == "anthropic"
    # The tokens it spent count against the tenant's budget like an answer's.
    status = (await client.get("/v1/rate-limit/status", headers=auth)).json()
    assert status["token_budget"]["used"] >= 340, status


async def test_openai_entities_invented_ones_dropped_and_malformed_output_is_502(
    data_dir: Path, ai: Any, fakes: Fakes
) -> None:
    from tests.e2e.conftest import client_for

    mesh = provider_mesh(data_dir, ai, fakes, "openai")
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "entities")
        fakes.openai_content = json.dumps(
            {
                "entities": [
                    {"text": "Chlorophyll", "type": "organization"},
                    {"text": "Atlantis", "type": "place"},  # not in the text
                    {"text": "glucose", "type": "spaceship"},  # not a requested type
                ]
            }
        )
        response = await client.post(
            "/v1/tools/extract_entities", json={"text": TEXT}, headers=auth
        )
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert [e["text"] for e in result["entities"]] == ["Chlorophyll"] and result["dropped"] == 2
        schema = fakes.bodies[-1]["response_format"]["json_schema"]
        assert schema["name"] == "extract_entities" and schema["strict"] is True
        assert "title" not in schema["schema"]  # the name travels beside the schema, not in it
        fakes.openai_content = "Sure! Here are the entities: Chlorophyll."
        broken = await client.post("/v1/tools/extract_entities", json={"text": TEXT}, headers=auth)
        assert (
            broken.status_code == 502 and broken.json()["error"]["code"] == "model_output_invalid"
        )
        admin_audit = (await client.get("/v1/audit?tool=extract_entities", headers=auth)).json()
        assert [e["error_code"] for e in admin_audit["entries"]] == ["model_output_invalid", None]
        await mesh.drain()


async def test_a_tool_past_its_timeout_is_504_and_audited(
    data_dir: Path, ai: Any, fakes: Fakes
) -> None:
    from tests.e2e.conftest import client_for

    mesh = provider_mesh(data_dir, ai, fakes, "openai", EDGERAG_TOOL_TIMEOUT_S="0.3")
    async with client_for(mesh) as client:
        _, auth = await new_tenant(client, "slow")
        fakes.delay_s = 3.0
        response = await client.post(
            "/v1/tools/extract_entities", json={"text": TEXT}, headers=auth
        )
        assert response.status_code == 504 and response.json()["error"]["code"] == "tool_timeout"
        entries = (await client.get("/v1/audit", headers=auth)).json()["entries"]
        assert entries[0]["error_code"] == "tool_timeout" and entries[0]["latency_ms"] < 3000
        await mesh.drain()


async def test_answers_take_the_register_of_the_readers_level(
    data_dir: Path, ai: Any, fakes: Fakes
) -> None:
    from tests.e2e.conftest import client_for
    from tests.e2e.identity import FAST_HASH, add_user

    mesh = provider_mesh(data_dir, ai, fakes, "openai", **FAST_HASH)
    async with client_for(mesh) as client:
        tenant, admin = await new_tenant(client, "register")
        student = await add_user(client, admin, tenant, "student", "s@register.test")
        await ingest(client, admin, "Light", TEXT)
        fakes.openai_content = json.dumps(
            {"claims": [{"text": FIRST, "source": 1, "quote": FIRST}]}
        )
        ask = {"query": "Which light does chlorophyll absorb?"}
        first = await client.post("/v1/answer", json=ask, headers=student["auth"])
        assert (
            first.status_code == 200
            and "beginner" not in fakes.bodies[-1]["messages"][0]["content"]
        )
        put = await client.put(
            "/v1/me/context", json={"level": "beginner"}, headers=student["auth"]
        )
        assert put.status_code == 200
        again = await client.post("/v1/answer", json=ask, headers=student["auth"])
        assert not again.json().get("cached"), "a new level is a new answer, not the cached one"
        system = fakes.bodies[-1]["messages"][0]["content"]
        assert "The reader is a beginner" in system
        await mesh.drain()
