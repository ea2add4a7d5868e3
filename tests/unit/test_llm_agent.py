"""The agent step's wire formats, built and read without a network: OpenAI-compatible,
Anthropic and Workers AI tool calling (llm.agent)."""

from __future__ import annotations

import asyncio
from typing import Any

from kernel.contracts.llm import AgentMessage, AgentRequest, AgentToolCall, ToolDeclaration
from llm.agent import (
    _arguments,
    _workers_ai,
    anthropic_messages,
    openai_messages,
    workers_ai_messages,
)
from llm.providers import Provider

CALL = AgentToolCall(id="c1", name="search_knowledge_base", arguments={"query": "light"})
TURN = [
    AgentMessage(role="user", content="Which light?"),
    AgentMessage(role="assistant", content="", tool_calls=[CALL]),
    AgentMessage(role="tool", content='{"passages": []}', tool_call_id="c1", name=CALL.name),
    AgentMessage(role="tool", content='{"error": {}}', tool_call_id="c2", name="x", is_error=True),
]


def test_openai_messages_carry_tool_calls_and_results() -> None:
    out = openai_messages("sys", TURN)
    assert out[0] == {"role": "system", "content": "sys"}
    assert out[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "search_knowledge_base", "arguments": '{"query": "light"}'},
            }
        ],
    }
    assert out[3] == {"role": "tool", "tool_call_id": "c1", "content": '{"passages": []}'}


def test_anthropic_groups_one_steps_results_in_one_user_message() -> None:
    out = anthropic_messages(TURN)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[1]["content"] == [
        {
            "type": "tool_use",
            "id": "c1",
            "name": "search_knowledge_base",
            "input": {"query": "light"},
        }
    ]
    assert [(b["tool_use_id"], b["is_error"]) for b in out[2]["content"]] == [
        ("c1", False),
        ("c2", True),
    ]


def test_workers_ai_messages_and_reply() -> None:
    out = workers_ai_messages("sys", TURN)
    assert out[3] == {
        "role": "tool",
        "name": "search_knowledge_base",
        "content": '{"passages": []}',
    }

    class AI:
        async def run(self, model: str, inputs: dict[str, Any]) -> dict[str, Any]:
            assert inputs["tools"][0] == {"name": "t", "description": "d", "parameters": {}}
            return {
                "response": None,
                "tool_calls": [{"name": "t", "arguments": {"a": 1}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
            }

    class B:
        ai = AI()

        def need(self, value: Any, name: str) -> Any:
            return value

    request = AgentRequest(
        messages=TURN[:1], tools=[ToolDeclaration(name="t", description="d", parameters={})]
    )
    reply = asyncio.run(_workers_ai(Provider("workers-ai", "@cf/x"), B(), request))  # type: ignore[arg-type]
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_0", "t", {"a": 1})]
    assert reply.usage.total_tokens == 7 and reply.text == ""


def test_arguments_that_are_not_an_object_are_marked_unparsed() -> None:
    assert _arguments('{"query": "x"}') == {"query": "x"}
    assert _arguments("") == {}
    assert _arguments("{oops") == {"_unparsed": "{oops"}
    assert _arguments("[1]") == {"_unparsed": "[1]"}
    assert _arguments({"a": 1}) == {"a": 1}
