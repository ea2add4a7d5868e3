"""The rag and llm Workers' internal routes against their contracts (kernel.contracts.rag,
kernel.contracts.llm, kernel.contracts.health): requests built from the models, sent over the
emulated service bindings to the real Workers, replies held to their models exactly — SSE
events included — and the usage header the gateway budgets from."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from kernel.contracts import ai_sdk, health, learning, llm, openai, rag, tools
from kernel.contracts.api import Citation, SearchResponse
from kernel.runtime import sse
from tests.contract.internal_routes import WorkerClient, assert_is
from tests.e2e.conftest import new_tenant

TEXT = (
    "Chlorophyll absorbs red and blue light and reflects green light. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen."
)
QUESTION = "Which light does chlorophyll absorb?"


@pytest.fixture
async def workers(mesh: Mesh, client: httpx.AsyncClient) -> SimpleNamespace:
    tenant_id, _ = await new_tenant(client, "rag-contract")
    teacher = ("u_teacher", "teacher")
    ingest = WorkerClient(mesh.stores["INGEST"], tenant_id, teacher)
    status, body, _ = await ingest.call("POST", "/documents", {"title": "Light", "text": TEXT})
    assert status == 202, body
    await mesh.drain()
    return SimpleNamespace(
        rag=WorkerClient(mesh.stores["RAG"], tenant_id, teacher),
        llm=WorkerClient(mesh.stores["LLM"], tenant_id, teacher),
        document_id=body["document_id"],
    )


async def test_search(workers: SimpleNamespace) -> None:
    status, body, _ = await workers.rag.call("POST", "/search", rag.SearchRequest(query=QUESTION))
    result = assert_is(SearchResponse, body)
    assert status == 200 and result.results[0].document_id == workers.document_id


async def test_answer_reports_its_usage_in_the_header(workers: SimpleNamespace) -> None:
    ask = rag.AnswerRequest(query=QUESTION)
    status, body, headers = await workers.rag.call("POST", "/answer", ask)
    answer = assert_is(rag.AnswerResponse, body)
    assert status == 200 and not answer.abstained and answer.usage["total_tokens"] > 0
    assert headers[rag.USAGE_HEADER] == str(answer.usage["total_tokens"])
    status, body, headers = await workers.rag.call("POST", "/answer", ask)
    assert assert_is(rag.AnswerResponse, body).cached and headers[rag.USAGE_HEADER] == "0"


async def test_eval_and_cache_clear(workers: SimpleNamespace) -> None:
    golden = rag.EvalRequest(
        questions=[
            rag.GoldenQuestion(question=QUESTION, relevant_document_ids=[workers.document_id])
        ],
        per_question=True,
    )
    status, body, _ = await workers.rag.call("POST", "/eval", golden)
    report = assert_is(rag.EvalReport, body)
    assert status == 200 and report.questions == 1 and set(report.modes) == set(rag.MODES)
    await workers.rag.call("POST", "/search", rag.SearchRequest(query=QUESTION))
    status, body, _ = await workers.rag.call("POST", "/internal/cache/clear", {})
    assert status == 200 and assert_is(rag.CacheCleared, body).removed >= 1


async def test_chat_session_lifecycle(workers: SimpleNamespace) -> None:
    status, body, _ = await workers.rag.call(
        "POST", "/chat/sessions", rag.CreateSession(title="Light")
    )
    created = assert_is(rag.SessionCreated, body)
    assert status == 201
    path = f"/chat/sessions/{created.session_id}"
    ask = rag.ChatMessageRequest(content=QUESTION)
    status, body, headers = await workers.rag.call("POST", f"{path}/messages", ask)
    reply = assert_is(rag.ChatAnswer, body)
    assert status == 200 and headers[rag.USAGE_HEADER] == str(reply.usage["total_tokens"])
    status, body, _ = await workers.rag.call("GET", "/chat/sessions")
    assert [s.id for s in assert_is(rag.SessionList, body).sessions] == [created.session_id]
    status, body, _ = await workers.rag.call("GET", path)
    detail = assert_is(rag.SessionDetail, body)
    assert [m.role for m in detail.messages] == ["user", "assistant"]
    for message in body["messages"]:
        assert_is(rag.ChatMessage, message)
    status, body, _ = await workers.rag.call("DELETE", path)
    assert status == 200 and assert_is(rag.SessionDeleted, body).deleted


async def test_chat_stream_events_are_their_models(workers: SimpleNamespace) -> None:
    _, body, _ = await workers.rag.call("POST", "/chat/sessions", rag.CreateSession())
    path = f"/chat/sessions/{body['session_id']}/messages"
    ask = rag.ChatMessageRequest(content=QUESTION, stream=True).model_dump(exclude_none=True)
    service = workers.rag.service
    response = await service.fetch(
        "POST",
        path,
        headers={
            "x-request-id": "req_contract",
            "x-edgerag-tenant": workers.rag.tenant_id,
            "x-edgerag-principal": "u_teacher",
            "x-edgerag-role": "teacher",
            "content-type": "application/json",
        },
        body=json.dumps(ask).encode(),
    )
    assert response.status == 200 and response.stream is not None
    assert rag.USAGE_HEADER not in response.headers  # a stream reports spending as it goes
    raw = b"".join([chunk async for chunk in response.stream]).decode()
    events: list[tuple[str, Any]] = []
    for frame in raw.strip().split("\n\n"):
        name_line, data_line = frame.split("\n", 1)
        name = name_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        events.append((name, assert_is(rag.STREAM_EVENTS[name], data)))
    names = [n for n, _ in events]
    assert names[-1] == "done" and "token" in names and "citation" in names
    spent = [e.tokens for n, e in events if n == "usage"]
    assert spent and spent[-1] == events[-1][1].usage["total_tokens"]


async def test_llm_generate_stream(workers: SimpleNamespace) -> None:
    request = llm.GenerateRequest(
        question=QUESTION, sources=[llm.Source(n=1, text=TEXT)], max_tokens=64, stream=True
    )
    response = await workers.llm.service.fetch(
        "POST",
        "/generate",
        headers={
            "x-request-id": "req_contract",
            "x-edgerag-tenant": workers.llm.tenant_id,
            "content-type": "application/json",
        },
        body=request.model_dump_json().encode(),
    )
    assert response.status == 200 and response.stream is not None
    events = [e async for e in sse.parse(response.stream)]
    parsed = [assert_is(llm.LLM_STREAM_EVENTS[e.event], e.json()) for e in events]
    names = [e.event for e in events]
    assert names[0] == "start" and names[-1] == "end" and names.count("delta") >= 2
    text = "".join(p.text for p in parsed if isinstance(p, llm.StreamDelta))
    end = parsed[-1]
    assert isinstance(end, llm.StreamEnd)
    assert "[1]" in text and end.usage.total_tokens > 0


async def test_llm_generate(workers: SimpleNamespace) -> None:
    request = llm.GenerateRequest(
        question=QUESTION, sources=[llm.Source(n=1, text=TEXT)], max_tokens=64
    )
    status, body, _ = await workers.llm.call("POST", "/generate", request)
    generated = assert_is(llm.GenerateResponse, body)
    assert status == 200 and generated.text and generated.usage.total_tokens > 0
    assert_is(llm.Usage, body["usage"])
    empty = llm.GenerateRequest(question=QUESTION, sources=[])
    status, body, _ = await workers.llm.call("POST", "/generate", empty)
    assert assert_is(llm.GenerateResponse, body).provider == "none"  # nothing to ask a model
    status, body, _ = await workers.llm.call("POST", "/generate", {"question": QUESTION})
    assert status == 422  # requests are strict: `sources` is required


async def test_tools_audit_and_context(workers: SimpleNamespace) -> None:
    status, body, _ = await workers.rag.call("GET", "/tools")
    names = {t["name"] for t in body["tools"]}
    assert status == 200 and "ingest_document" in names  # a teacher may ingest
    args = tools.SearchArgs(query=QUESTION, top_k=2)
    status, body, headers = await workers.rag.call("POST", "/tools/search_knowledge_base", args)
    reply = assert_is(tools.ToolCallReply, body)
    found = assert_is(tools.SearchResult, reply.result)
    assert status == 200 and found.passages[0].document_id == workers.document_id
    assert headers[rag.USAGE_HEADER] == "0"  # no model was asked
    admin = WorkerClient(workers.rag.service, workers.rag.tenant_id, ("k_admin", "admin"))
    status, body, _ = await admin.call("GET", "/audit?limit=5")
    page = assert_is(tools.AuditPage, body)
    assert status == 200 and page.entries[0].id == reply.audit_id
    assert_is(tools.AuditRow, body["entries"][0])
    context = tools.UserContextBody(level="beginner", goals=["pass the exam"])
    status, body, _ = await workers.rag.call("PUT", "/me/context", context)
    assert status == 200 and assert_is(tools.UserContext, body).level == "beginner"
    status, body, _ = await workers.rag.call("GET", "/me/context")
    assert assert_is(tools.UserContext, body).goals == ["pass the exam"]
    status, body, _ = await workers.rag.call("GET", "/users/u_somebody/context")
    assert status == 404


async def test_progress_routes(workers: SimpleNamespace) -> None:
    update = learning.ProgressUpdate(document_id=workers.document_id, completed=True)
    status, body, _ = await workers.rag.call("POST", "/me/progress", update)
    mine = assert_is(learning.Progress, body)
    assert status == 200 and mine.documents[0].sections_completed == 1
    assert_is(learning.DocumentProgress, body["documents"][0])
    status, body, _ = await workers.rag.call("GET", "/me/progress")
    assert assert_is(learning.Progress, body) == mine
    status, body, _ = await workers.rag.call("GET", "/users/u_nobody/progress")
    assert status == 404
    admin = WorkerClient(workers.rag.service, workers.rag.tenant_id, ("k_admin", "admin"))
    status, body, _ = await admin.call("GET", "/progress/summary")
    assert status == 200 and assert_is(learning.ProgressSummary, body).documents[0].readers == 1


async def test_translate_and_plan(workers: SimpleNamespace) -> None:
    ask = learning.TranslateRequest(text="Roots take up water.", target_language="ur")
    status, body, headers = await workers.rag.call("POST", "/translate", ask)
    done = assert_is(learning.TranslateResponse, body)
    assert status == 200 and done.direction == "rtl" and not done.cached
    assert_is(learning.Block, body["blocks"][0])
    assert rag.CACHED_HEADER not in headers and int(headers[rag.USAGE_HEADER]) > 0
    status, body, headers = await workers.rag.call("POST", "/translate", ask)
    assert assert_is(learning.TranslateResponse, body).cached
    assert headers[rag.CACHED_HEADER] == "true" and headers[rag.USAGE_HEADER] == "0"
    status, body, _ = await workers.llm.call("POST", "/plan", llm.PlanRequest())
    assert status == 200 and assert_is(llm.Plan, body).provider == "workers-ai"
    status, body, _ = await workers.rag.call(
        "POST", "/personalize", {"document_id": workers.document_id, "section": "Nowhere"}
    )
    assert status == 404


async def test_tts_routes_say_when_speech_is_not_enabled(workers: SimpleNamespace) -> None:
    # The contract mesh configures no speech provider: both hops answer 501 in the error shape.
    status, body, _ = await workers.llm.call("POST", "/tts", learning.SpeakRequest(text="Hi"))
    assert status == 501 and body["error"]["code"] == "not_enabled"
    status, body, _ = await workers.rag.call("POST", "/tts", learning.TtsRequest(text="Hi"))
    assert status == 501 and body["error"]["code"] == "not_enabled"
    status, body, _ = await workers.llm.call("POST", "/tts", {"text": "<b>x</b>"})
    assert status == 422


async def test_llm_task(workers: SimpleNamespace) -> None:
    ask = llm.TaskRequest(
        task="extract_entities",
        text="Marie Curie worked in Paris.",
        types=[llm.TaskType(name="person", description="a person's name")],
    )
    status, body, _ = await workers.llm.call("POST", "/task", ask)
    done = assert_is(llm.TaskResponse, body)
    assert status == 200 and done.output["entities"][0]["text"] == "Marie Curie"
    status, body, _ = await workers.llm.call("POST", "/task", {"task": "poem", "text": "x"})
    assert status == 422


async def test_llm_agent_step(workers: SimpleNamespace) -> None:
    declaration = llm.ToolDeclaration(
        name="search_knowledge_base",
        description="search",
        parameters=tools.SearchArgs.model_json_schema(),
    )
    ask = llm.AgentRequest(
        messages=[llm.AgentMessage(role="user", content=QUESTION)], tools=[declaration]
    )
    status, body, _ = await workers.llm.call("POST", "/agent", ask)
    step = assert_is(llm.AgentResponse, body)
    assert status == 200 and step.supported and step.provider == "workers-ai"
    assert [(c.name, c.arguments) for c in step.tool_calls] == [
        ("search_knowledge_base", {"query": QUESTION})
    ]
    status, body, _ = await workers.llm.call("POST", "/agent", {"messages": [], "tools": []})
    assert status == 422


async def test_openai_models_and_completion(workers: SimpleNamespace) -> None:
    status, body, _ = await workers.rag.call("GET", "/models")
    listed = assert_is(openai.OpenAIModelList, body)
    assert status == 200 and [m.id for m in listed.data] == list(openai.MODELS)
    assert_is(openai.OpenAIModel, body["data"][0])
    status, body, _ = await workers.rag.call("GET", "/models/edgerag-dense")
    assert status == 200 and assert_is(openai.OpenAIModel, body).owned_by == workers.rag.tenant_id
    status, body, _ = await workers.rag.call("GET", "/models/gpt-4o")
    assert status == 404 and body["error"]["code"] == "model_not_found"
    ask = openai.OpenAIChatRequest(
        model="edgerag", messages=[openai.OpenAIMessage(role="user", content=QUESTION)]
    )
    status, body, headers = await workers.rag.call("POST", "/chat/completions", ask)
    reply = assert_is(openai.OpenAIChatCompletion, body)
    assert status == 200 and headers[rag.USAGE_HEADER] == str(reply.usage.total_tokens)
    choice = body["choices"][0]
    assert_is(openai.CompletionChoice, choice)
    assert_is(openai.AssistantMessage, choice["message"])
    assert_is(openai.AnswerExtras, choice["message"]["edgerag"])
    assert_is(openai.CompletionUsage, body["usage"])
    for citation in choice["message"]["citations"]:
        assert_is(Citation, citation)
    assert reply.choices[0].message.citations and not reply.choices[0].message.edgerag.abstained


async def _stream(workers: SimpleNamespace, path: str, body: dict[str, Any]) -> Any:
    response = await workers.rag.service.fetch(
        "POST",
        path,
        headers={
            "x-request-id": "req_contract",
            "x-edgerag-tenant": workers.rag.tenant_id,
            "x-edgerag-principal": "u_teacher",
            "x-edgerag-role": "teacher",
            "content-type": "application/json",
        },
        body=json.dumps(body).encode(),
    )
    assert response.status == 200 and response.stream is not None
    assert rag.USAGE_HEADER not in response.headers  # a stream reports spending as it goes
    return response, [e async for e in sse.parse(response.stream)]


async def test_openai_stream_chunks_are_their_model(workers: SimpleNamespace) -> None:
    ask = openai.OpenAIChatRequest(
        model="edgerag-keyword",
        messages=[openai.OpenAIMessage(role="user", content=QUESTION)],
        stream=True,
        stream_options=openai.StreamOptions(include_usage=True),
    )
    _, events = await _stream(workers, "/chat/completions", ask.model_dump(exclude_none=True))
    assert events[-1].data == "[DONE]"
    spent = [rag.SpentEvent.model_validate_json(e.data) for e in events if e.event == "usage"]
    chunks = [
        assert_is(openai.OpenAIChatChunk, e.json()) for e in events[:-1] if e.event == "message"
    ]
    assert {e.event for e in events} == {"message", "usage"}  # usage: internal, for the gateway
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert spent and spent[-1].tokens == last.usage.total_tokens
    finishing = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].delta.citations


async def test_ai_sdk_chunks_name_their_protocol(workers: SimpleNamespace) -> None:
    message = ai_sdk.UIMessage(
        id="m1", role="user", parts=[ai_sdk.UIPart(type="text", text=QUESTION)]
    )
    ask = ai_sdk.AiSdkChatRequest(id="chat", messages=[message])
    response, events = await _stream(workers, "/ai-sdk/chat", ask.model_dump(exclude_none=True))
    assert response.headers[ai_sdk.HEADER] == ai_sdk.VERSION
    assert events[-1].data == "[DONE]"
    kinds = [e.json()["type"] for e in events[:-1] if e.event == "message"]
    assert kinds[0] == "start" and kinds[-1] == "finish" and "source-document" in kinds
    spent = [rag.SpentEvent.model_validate_json(e.data) for e in events if e.event == "usage"]
    finish = [e.json() for e in events[:-1] if e.event == "message"][-1]
    assert spent and spent[-1].tokens == finish["messageMetadata"]["usage"]["total_tokens"]
    assert_is(
        openai.AnswerExtras, {k: v for k, v in finish["messageMetadata"].items() if k != "usage"}
    )


@pytest.mark.parametrize("worker", ["RAG", "LLM", "INGEST"])
async def test_health_is_the_shared_report(
    mesh: Mesh, workers: SimpleNamespace, worker: str
) -> None:
    client = WorkerClient(mesh.stores[worker], workers.rag.tenant_id, ("k_admin", "admin"))
    status, body, _ = await client.call("GET", "/internal/health")
    report = assert_is(health.HealthReport, body)
    assert status == 200 and report.worker == worker.lower() and report.status == "ok"
    scrape = await mesh.stores[worker].fetch(
        "GET", "/internal/metrics", headers={"x-request-id": "req_contract"}
    )
    assert scrape.status == 200 and scrape.headers["content-type"].startswith("text/plain")
    assert f'worker="{worker.lower()}"' in scrape.body.decode()  # Prometheus text, labelled


def test_every_rag_and_llm_route_has_a_contract_test() -> None:
    from llm.app import build_app as build_llm
    from rag.app import build_app as build_rag

    def routes(build: Any) -> set[tuple[str, str]]:
        return {(r.method, r.pattern) for r in build(SimpleNamespace()).router.routes}

    shared = {("GET", "/internal/health"), ("GET", "/internal/metrics")}
    assert routes(build_rag) == shared | {
        ("POST", "/search"),
        ("POST", "/answer"),
        ("POST", "/eval"),
        ("POST", "/internal/cache/clear"),
        ("POST", "/chat/sessions"),
        ("GET", "/chat/sessions"),
        ("GET", "/chat/sessions/{session_id}"),
        ("DELETE", "/chat/sessions/{session_id}"),
        ("POST", "/chat/sessions/{session_id}/messages"),
        ("GET", "/tools"),
        ("POST", "/tools/{name}"),
        ("GET", "/audit"),
        ("GET", "/me/context"),
        ("PUT", "/me/context"),
        ("GET", "/users/{user_id}/context"),
        ("GET", "/me/progress"),
        ("POST", "/me/progress"),
        ("GET", "/users/{user_id}/progress"),
        ("GET", "/progress/summary"),
        ("POST", "/personalize"),
        ("POST", "/translate"),
        ("POST", "/tts"),
        # tests/contract/test_workspace_routes.py
        ("POST", "/recordings/{recording_id}/feedback"),
        ("GET", "/recordings/{recording_id}/feedback"),
        ("GET", "/models"),
        ("GET", "/models/{model}"),
        ("POST", "/chat/completions"),
        ("POST", "/ai-sdk/chat"),
        # tests/contract/test_mcp_routes.py
        ("POST", "/mcp"),
        ("DELETE", "/mcp"),
    }
    assert routes(build_llm) == shared | {
        ("POST", "/generate"),
        ("POST", "/task"),
        ("POST", "/agent"),
        ("POST", "/plan"),
        ("POST", "/tts"),
        ("POST", "/analyze"),  # tests/contract/test_workspace_routes.py
    }
