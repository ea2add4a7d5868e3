"""Query understanding over HTTP: intents and rewritten queries on answers and chat; small talk
costs no retrieval and no model call; out-of-scope abstains unless the documents cover it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN, ingest, new_tenant
from tests.e2e.openai_wire import completion
from tests.e2e.sse import events

TEXT = (
    "Chlorophyll absorbs red and blue light and reflects green light. "
    "Stomata are pores in the leaf that let carbon dioxide in."
)
SPORT = "The 2014 football World Cup was won by Germany, who beat Argentina in the final."
SENTENCE = "Chlorophyll absorbs red and blue light and reflects green light."


class Model:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = json.loads(request.content)
        first = body["messages"][-1]["content"].split("[1] ", 1)[1].split("\n\nQuestion:")[0]
        source = first.split(". ")[0].rstrip(".") + "."
        return completion(f"{source} [1]", (50, 10))


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def mesh(data_dir: Path, ai: Any, model: Model) -> Mesh:
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(model)),
        vars={
            "EDGERAG_LLM_PROVIDERS": "openai",
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": "https://openai.fake",
            "EDGERAG_OPENAI_MODEL": "fake-model",
            "EDGERAG_OPENAI_STRUCTURED": "false",
        },
    )


async def _ask(client: httpx.AsyncClient, auth: dict[str, str], query: str) -> dict[str, Any]:
    response = await client.post("/v1/answer", json={"query": query}, headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_answers_carry_intent_and_small_talk_costs_nothing(
    client: httpx.AsyncClient, model: Model
) -> None:
    _, auth = await new_tenant(client, "understanding")
    await ingest(client, auth, "Leaves", TEXT)
    hello = await _ask(client, auth, "Hi there!")
    assert hello["intent"] == "small_talk" and hello["answer"].startswith("Hello")
    assert hello["citations"] == [] and hello["usage"]["total_tokens"] == 0
    assert hello["timings_ms"] == {} and model.calls == 0  # no retrieval, no model
    thanks = await _ask(client, auth, "thanks so much!")
    assert thanks["answer"].startswith("You're welcome")
    joke = await _ask(client, auth, "Tell me a joke about cats.")
    assert joke["intent"] == "out_of_scope" and joke["abstained"] and model.calls == 0
    factual = await _ask(client, auth, "Which light does chlorophyll absorb?")
    assert factual["intent"] == "factual" and not factual["abstained"]
    assert factual["rewritten_query"] == "Which light does chlorophyll absorb?"
    assert factual["answer"] == f"{SENTENCE} [1]" and model.calls == 1
    compare = await _ask(client, auth, "Compare chlorophyll and stomata.")
    assert compare["intent"] == "comparison"


async def test_out_of_scope_is_decided_by_the_documents_when_they_cover_it(
    client: httpx.AsyncClient, model: Model
) -> None:
    _, auth = await new_tenant(client, "sport school")
    await ingest(client, auth, "Football", SPORT)
    body = await _ask(client, auth, "Who won the World Cup in 2014?")
    assert not body["abstained"] and body["intent"] == "factual", (body, model.calls)


async def test_chat_rewrites_follow_ups_and_keeps_small_talk_out_of_retrieval(
    client: httpx.AsyncClient, model: Model
) -> None:
    _, auth = await new_tenant(client, "chat understanding")
    await ingest(client, auth, "Leaves", TEXT)
    session = (await client.post("/v1/chat/sessions", json={}, headers=auth)).json()["session_id"]
    path = f"/v1/chat/sessions/{session}/messages"
    first = (
        await client.post(path, json={"content": "What does chlorophyll absorb?"}, headers=auth)
    ).json()
    assert first["intent"] == "factual"
    follow = (
        await client.post(path, json={"content": "and what does it reflect?"}, headers=auth)
    ).json()
    assert follow["rewritten_query"] == "What does chlorophyll absorb? and what does it reflect?"
    calls = model.calls
    thanks = (await client.post(path, json={"content": "Thanks!"}, headers=auth)).json()
    assert thanks["intent"] == "small_talk" and model.calls == calls
    async with client.stream(
        "POST", path, json={"content": "bye!", "stream": True}, headers=auth
    ) as response:
        got = [e async for e in events(response.aiter_lines())]
    shown = "".join(d["text"] for n, d in got if n == "token").strip()
    assert shown.startswith("Goodbye") and got[-1][0] == "done"
    assert got[-1][1]["intent"] == "small_talk" and model.calls == calls
