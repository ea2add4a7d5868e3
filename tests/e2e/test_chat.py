"""Chat sessions over HTTP: memory, follow-up rewriting, SSE streaming, partial messages."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from emulator.dev import AsgiGateway
from emulator.mesh import Mesh
from tests.e2e.conftest import assert_error, ingest, new_tenant
from tests.e2e.sse import events
from tests.e2e.test_answers import BIOLOGY, PHYSICS, assert_citations_verified


async def new_session(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post("/v1/chat/sessions", json={"title": "Revision"}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


async def test_chat_memory_and_follow_up_rewriting(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "chat")
    await ingest(client, auth, "Biology", BIOLOGY)
    await ingest(client, auth, "Physics", PHYSICS)
    session = await new_session(client, auth)
    url = f"/v1/chat/sessions/{session}/messages"
    first = (
        await client.post(url, json={"content": "What does chlorophyll absorb?"}, headers=auth)
    ).json()
    assert not first["abstained"] and "Chlorophyll" in first["answer"]
    await assert_citations_verified(mesh, first)
    follow = (
        await client.post(url, json={"content": "And what does it reflect?"}, headers=auth)
    ).json()
    assert "chlorophyll" in follow["retrieval_query"].lower(), (
        "the follow-up was rewritten with the last turn"
    )
    assert "green light" in follow["answer"]
    detail = (await client.get(f"/v1/chat/sessions/{session}", headers=auth)).json()
    assert [(m["role"], m["status"]) for m in detail["messages"]] == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert detail["messages"][1]["citations"] == first["citations"]
    listing = (await client.get("/v1/chat/sessions", headers=auth)).json()["sessions"]
    assert [s["id"] for s in listing] == [session]


async def test_streamed_answer_events(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "stream")
    await ingest(client, auth, "Biology", BIOLOGY)
    session = await new_session(client, auth)
    seen: list[tuple[str, Any]] = []
    async with client.stream(
        "POST",
        f"/v1/chat/sessions/{session}/messages",
        json={"content": "Where does photosynthesis take place?", "stream": True},
        headers=auth,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in events(response.aiter_lines()):
            seen.append(event)
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "token" and kinds[-1] == "done" and "citation" in kinds
    text = "".join(data["text"] for kind, data in seen if kind == "token").strip()
    citations = [data for kind, data in seen if kind == "citation"]
    done = seen[-1][1]
    assert (
        "chloroplasts" in text
        and 0 < done["confidence"] <= 1
        and set(done["usage"]) >= {"total_tokens"}
    )
    await assert_citations_verified(mesh, {"answer": text, "citations": citations})
    stored = (await client.get(f"/v1/chat/sessions/{session}", headers=auth)).json()["messages"][-1]
    assert (
        stored["status"] == "complete"
        and stored["content"] == text
        and stored["citations"] == citations
    )


async def test_a_stream_cut_off_by_the_client_is_stored_as_partial(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "cutoff")
    await ingest(client, auth, "Biology", BIOLOGY + " " + PHYSICS)
    session = await new_session(client, auth)
    body = json.dumps(
        {"content": "Tell me about chlorophyll, light and oxygen", "stream": True}
    ).encode()
    gone = asyncio.Event()
    chunks: list[bytes] = []
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            if len(chunks) == 2:
                gone.set()  # the reader closes the tab after two events
            await asyncio.sleep(0.01)

    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v1/chat/sessions/{session}/messages",
        "raw_path": f"/v1/chat/sessions/{session}/messages".encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"authorization", auth["authorization"].encode()),
        ],
    }
    await AsgiGateway(mesh)(scope, receive, send)
    stored = (await client.get(f"/v1/chat/sessions/{session}", headers=auth)).json()["messages"][-1]
    assert stored["status"] == "partial"
    received = "".join(json.loads(c.decode().split("data: ", 1)[1])["text"] for c in chunks[:2])
    assert stored["content"] == received.strip() and stored["content"]


async def test_sessions_are_private_to_their_owner(client: httpx.AsyncClient) -> None:
    _, auth_a = await new_tenant(client, "owner-a")
    _, auth_b = await new_tenant(client, "owner-b")
    session = await new_session(client, auth_a)
    assert_error(await client.get(f"/v1/chat/sessions/{session}", headers=auth_b), 404)
    assert_error(
        await client.post(
            f"/v1/chat/sessions/{session}/messages", json={"content": "hi"}, headers=auth_b
        ),
        404,
    )
    assert (await client.get("/v1/chat/sessions", headers=auth_b)).json()["sessions"] == []
    assert_error(
        await client.post(
            f"/v1/chat/sessions/{session}/messages", json={"content": ""}, headers=auth_a
        ),
        422,
    )
    assert (await client.delete(f"/v1/chat/sessions/{session}", headers=auth_a)).status_code == 200
    assert_error(await client.get(f"/v1/chat/sessions/{session}", headers=auth_a), 404)
