"""`POST /v1/ai-sdk/chat`: what `useChat` (AI SDK 5, DefaultChatTransport) posts, answered as a
UI message stream (v1), parsed here as the SDK parses it — every chunk held to the keys the
SDK's strict chunk schema allows (ai/src/ui-message-stream/ui-message-chunks.ts), in the order
its message processor needs, ending in `data: [DONE]`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from kernel.contracts.ai_sdk import HEADER, VERSION
from kernel.domain.prompt_format import ABSTAIN_TEXT
from tests.e2e.conftest import assert_error, ingest, new_tenant
from tests.e2e.devserver import serving
from tests.e2e.test_answers import BIOLOGY, PHYSICS, stored_text
from tests.e2e.test_openai_compat import OPERATOR, metered_mesh

# type → (required keys, optional keys), for the chunk types this route sends (AI SDK 5).
CHUNKS: dict[str, tuple[set[str], set[str]]] = {
    "start": (set(), {"messageId", "messageMetadata"}),
    "start-step": (set(), set()),
    "text-start": ({"id"}, {"providerMetadata"}),
    "text-delta": ({"id", "delta"}, {"providerMetadata"}),
    "text-end": ({"id"}, {"providerMetadata"}),
    "source-document": ({"sourceId", "mediaType", "title"}, {"filename", "providerMetadata"}),
    "finish-step": (set(), set()),
    "finish": (set(), {"messageMetadata"}),
    "error": ({"errorText"}, set()),
}
URL = "/v1/ai-sdk/chat"


def user(text: str, id_: str = "m_user") -> dict[str, Any]:
    return {"id": id_, "role": "user", "parts": [{"type": "text", "text": text}]}


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "chat_1", "messages": list(messages), "trigger": "submit-message", **extra}


async def ui_stream(response: httpx.Response) -> list[dict[str, Any]]:
    """The chunks, each checked against the SDK's schema; [DONE] must come last."""
    assert response.status_code == 200
    assert response.headers[HEADER] == VERSION
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in (await response.aread()).decode().split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    chunks = []
    for frame in frames[:-1]:
        assert frame.startswith("data: ") and "\n" not in frame  # data-only, one line each
        chunk = json.loads(frame.removeprefix("data: "))
        required, optional = CHUNKS[chunk["type"]]
        keys = set(chunk) - {"type"}
        assert required <= keys <= required | optional, chunk
        chunks.append(chunk)
    return chunks


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["delta"] for c in chunks if c["type"] == "text-delta")


@pytest.fixture
async def base(mesh: Mesh) -> AsyncIterator[str]:
    async with serving(mesh) as url:
        yield url


@pytest.fixture
async def http(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        yield client


async def test_an_answer_streams_text_sources_and_finish(
    http: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(http, "ai-sdk")
    bio = await ingest(http, auth, "Biology", BIOLOGY)
    await ingest(http, auth, "Physics", PHYSICS)
    response = await http.post(
        URL, json=body(user("Which light does chlorophyll absorb?")), headers=auth
    )
    chunks = await ui_stream(response)
    kinds = [c["type"] for c in chunks]
    assert kinds[:3] == ["start", "start-step", "text-start"]
    assert kinds[-3:] == ["text-end", "finish-step", "finish"]
    assert chunks[0]["messageId"]
    text_ids = {c["id"] for c in chunks if c["type"].startswith("text-")}
    assert len(text_ids) == 1  # one text part, every delta into it
    text = text_of(chunks)
    assert "Chlorophyll absorbs red and blue light" in text
    sources = [c for c in chunks if c["type"] == "source-document"]
    assert sources and sources[0]["title"] == "Biology"
    for source in sources:
        citation = source["providerMetadata"]["edgerag"]
        stored = await stored_text(mesh, citation["document_id"], citation["version"])
        assert stored[citation["char_start"] : citation["char_end"]] == citation["quote"]
        assert source["sourceId"] == str(citation["n"]) and f"[{citation['n']}]" in text
        assert source["mediaType"] == "text/plain"
    assert sources[0]["providerMetadata"]["edgerag"]["document_id"] == bio["document_id"]
    # A source follows the sentence that cites it.
    first_source = kinds.index("source-document")
    assert "[1]" in "".join(c.get("delta", "") for c in chunks[:first_source])
    finished = chunks[-1]["messageMetadata"]
    assert not finished["abstained"] and 0 < finished["confidence"] <= 1
    assert finished["usage"]["total_tokens"] > 0 and "chlorophyll" in finished["retrieval_query"]


async def test_a_follow_up_reads_the_ui_history(http: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(http, "ai-sdk-history")
    await ingest(http, auth, "Biology", BIOLOGY)
    await ingest(http, auth, "Physics", PHYSICS)
    # An earlier answer as useChat keeps it: every part kind the SDK may store on a message.
    earlier = {
        "id": "m_answer",
        "role": "assistant",
        "metadata": {"confidence": 0.9},
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "thinking", "state": "done"},
            {
                "type": "text",
                "text": "Chlorophyll absorbs red and blue light. [1]",
                "state": "done",
            },
            {"type": "source-document", "sourceId": "1", "mediaType": "text/plain", "title": "B"},
            {"type": "source-url", "sourceId": "u", "url": "https://example.org"},
            {"type": "tool-lookup", "toolCallId": "c1", "state": "output-available", "input": {}},
            {"type": "data-note", "id": "n1", "data": {"x": 1}},
            {"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,AA=="},
        ],
    }
    sent = body(
        {"id": "m_sys", "role": "system", "parts": [{"type": "text", "text": "Reply in French."}]},
        user("What does chlorophyll absorb?", "m_1"),
        earlier,
        user("And what does it reflect?", "m_2"),
        model="edgerag-keyword",
    )
    chunks = await ui_stream(await http.post(URL, json=sent, headers=auth))
    assert "green light" in text_of(chunks)
    assert "chlorophyll" in chunks[-1]["messageMetadata"]["retrieval_query"].lower()
    regenerate = {**sent, "trigger": "regenerate-message", "messageId": "m_answer"}
    assert "green light" in text_of(
        await ui_stream(await http.post(URL, json=regenerate, headers=auth))
    )


async def test_unanswerable_questions_abstain_without_sources(http: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(http, "ai-sdk-abstain")
    await ingest(http, auth, "Biology", BIOLOGY)
    sent = body(user("Who won the 1998 football world cup?"))
    chunks = await ui_stream(await http.post(URL, json=sent, headers=auth))
    assert text_of(chunks) == ABSTAIN_TEXT
    assert "source-document" not in [c["type"] for c in chunks]
    metadata = chunks[-1]["messageMetadata"]
    assert metadata["abstained"] and metadata["confidence"] == 0.0


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (body(user("Hi"), temperature=1), "temperature"),
        (
            body({"id": "a", "role": "assistant", "parts": [{"type": "text", "text": "Hi"}]}),
            "messages",
        ),
        (body(user(" ")), "messages"),
        (body(user("Hi"), trigger="resume"), "trigger"),
        ({"messages": [user("Hi")]}, "id"),
        (
            body(
                {
                    "id": "u",
                    "role": "user",
                    "parts": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "file", "mediaType": "image/png", "url": "data:image/png,"},
                    ],
                }
            ),
            "messages",
        ),
        (
            body({"id": "u", "role": "user", "parts": [{"text": "no type"}]}),
            "messages.0.parts.0.type",
        ),
    ],
)
async def test_bad_bodies_are_422s_naming_the_field(
    http: httpx.AsyncClient, sent: dict[str, Any], field: str
) -> None:
    _, auth = await new_tenant(http, "ai-sdk-422")
    error = assert_error(await http.post(URL, json=sent, headers=auth), 422, "validation_error")
    assert error["details"]["fields"][0]["field"] == field


async def test_keys_models_and_budgets(http: httpx.AsyncClient) -> None:
    tenant, auth = await new_tenant(http, "ai-sdk-limits")
    await ingest(http, auth, "Biology", BIOLOGY)
    asked = body(user("Which light does chlorophyll absorb?"))
    assert_error(await http.post(URL, json=asked, headers={"authorization": "Bearer erk_x"}), 401)
    unknown = await http.post(URL, json={**asked, "model": "gpt-4o"}, headers=auth)
    assert_error(unknown, 404, "model_not_found")
    await ui_stream(await http.post(URL, json=asked, headers=auth))
    status = (await http.get("/v1/rate-limit/status", headers=auth)).json()["token_budget"]
    assert status["used"] > 0 and status["reserved"] == 0  # the stream was charged
    await http.patch(
        f"/v1/tenants/{tenant}", json={"daily_token_budget": status["used"]}, headers=OPERATOR
    )
    assert_error(await http.post(URL, json=asked, headers=auth), 429, "token_budget_exhausted")


async def test_a_budget_running_out_mid_stream_ends_it_as_an_error_chunk(
    data_dir: Path, ai: Any
) -> None:
    from tests.e2e.test_streaming import FIRST, TEXT, Providers, openai_frames

    providers = Providers()
    providers.openai = openai_frames(*[FIRST] * 60, usage=(150, 900))
    mesh = metered_mesh(data_dir, ai, providers)
    async with serving(mesh) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        tenant, auth = await new_tenant(http, "ai-sdk-mid-stream")
        await ingest(http, auth, "Leaves", TEXT)
        await http.patch(
            f"/v1/tenants/{tenant}", json={"daily_token_budget": 400}, headers=OPERATOR
        )
        sent = body(user("What does chlorophyll absorb?"))
        chunks = await ui_stream(await http.post(URL, json=sent, headers=auth))
        assert chunks[-1]["type"] == "error"
        assert chunks[-1]["errorText"].startswith("token_budget_exhausted: ")
        assert "Chlorophyll absorbs" in text_of(chunks)  # it was answering
        assert "finish" not in [c["type"] for c in chunks]
        assert providers.closed.is_set()
        status = (await http.get("/v1/rate-limit/status", headers=auth)).json()["token_budget"]
        assert status["reserved"] == 0 and 400 <= status["used"] < 400 + 100
