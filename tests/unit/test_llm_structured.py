"""Structured grounded answers: each provider asked its documented way (Anthropic forced tool,
OpenAI `response_format: json_schema`, Workers AI JSON mode), the replies read back, claims
parsed leniently and streamed claim by claim, and the tenant's provider/model narrowing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.kv import EmulatedKV
from kernel.bindings.env import Bindings
from kernel.bindings.ports import BindingError
from kernel.contracts.llm import GeneratedClaim, GenerateRequest, Source
from kernel.domain.prompt_format import ABSTAIN_TEXT
from kernel.runtime import sse
from kernel.runtime.errors import ServiceUnavailable
from llm import claims
from llm.generation import generate_grounded, stream_grounded
from llm.providers import Provider, configured
from llm.router import NoAllowedProvider, Router
from tests.unit.test_llm_providers import ANTHROPIC, OPENAI, bindings, no_sleep
from tests.unit.test_llm_streams import USAGE, anthropic_event, openai_chunk, sse_reply

CLAIMS: dict[str, list[dict[str, Any]]] = {
    "claims": [
        {"text": "Chlorophyll absorbs red light.", "source": 1, "quote": "absorbs red light"},
        {"text": "It reflects green.", "source": 2, "quote": "reflects green light"},
    ]
}
REQUEST = GenerateRequest(
    question="Which light does chlorophyll absorb?",
    sources=[
        Source(n=1, text="Chlorophyll absorbs red light and blue light."),
        Source(n=2, text="Leaves look green because chlorophyll reflects green light."),
    ],
)


def anthropic_tool_reply(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert body["tool_choice"] == {"type": "tool", "name": claims.TOOL_NAME}
    (tool,) = body["tools"]
    assert tool["name"] == claims.TOOL_NAME and tool["input_schema"] == claims.CLAIMS_SCHEMA
    assert claims.INSTRUCTIONS in body["system"]  # the prompt says what the fields mean
    return httpx.Response(
        200,
        json={
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": claims.TOOL_NAME, "input": CLAIMS}
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 40, "output_tokens": 30},
        },
    )


def openai_json_reply(content: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": "grounded_answer",
                "strict": True,
                "schema": claims.CLAIMS_SCHEMA,
            },
        }
        message = {"role": "assistant", "content": content}
        return httpx.Response(
            200,
            json={
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
            },
        )

    return handle


class FakeWorkersAI:
    """The AI port as Workers AI answers JSON mode: `response` is the object, not text."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.inputs: list[Mapping[str, Any]] = []

    async def run(self, model: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        self.inputs.append(inputs)
        usage = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}
        return {"response": self.response, "usage": usage}


def with_ai(b: Bindings, ai: Any) -> Bindings:
    return replace(b, ai=ai)


WORKERS_AI = Provider("workers-ai", "@cf/meta/llama-3.3-70b-instruct-fp8-fast")


# --- request bodies and replies, provider by provider -------------------------------------
async def test_anthropic_is_forced_to_call_the_claims_tool() -> None:
    b = bindings({"anthropic.test": anthropic_tool_reply})
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [ANTHROPIC], sleep=no_sleep))
    assert reply.claims == [GeneratedClaim(**c) for c in CLAIMS["claims"]]
    assert reply.text == "Chlorophyll absorbs red light. [1] It reflects green. [2]"
    assert reply.usage.total_tokens == 70 and reply.malformed_claims == 0


async def test_openai_json_schema_reply_in_a_code_fence() -> None:
    fenced = f"```json\n{json.dumps(CLAIMS)}\n```"  # some servers wrap JSON mode in a fence
    b = bindings({"openai.test": openai_json_reply(fenced)})
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [OPENAI], sleep=no_sleep))
    assert [c.source for c in reply.claims or []] == [1, 2]


async def test_a_reply_that_ignores_the_schema_is_read_as_marker_text() -> None:
    b = bindings({"openai.test": openai_json_reply("Red and blue light. [1]")})
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [OPENAI], sleep=no_sleep))
    assert reply.claims is None and reply.text == "Red and blue light. [1]"


async def test_no_claims_is_an_abstention() -> None:
    b = bindings({"openai.test": openai_json_reply('{"claims": []}')})
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [OPENAI], sleep=no_sleep))
    assert reply.claims == [] and reply.text == ABSTAIN_TEXT


async def test_workers_ai_json_mode() -> None:
    ai = FakeWorkersAI(CLAIMS)
    b = with_ai(bindings({}), ai)
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [WORKERS_AI], sleep=no_sleep))
    assert ai.inputs[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": claims.CLAIMS_SCHEMA,
    }
    assert len(reply.claims or []) == 2 and reply.usage.total_tokens == 20


async def test_structured_off_per_provider_and_per_request() -> None:
    seen: list[dict[str, Any]] = []

    def plain(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return _plain_openai(request)

    b = bindings(
        {"openai.test": plain},
        EDGERAG_LLM_PROVIDERS="openai",
        EDGERAG_OPENAI_STRUCTURED="false",
        OPENAI_BASE_URL="https://openai.test",
    )
    (openai,) = configured(b)
    assert openai.structured is False
    reply = await generate_grounded(b, REQUEST, "t_x", Router(b, [openai], sleep=no_sleep))
    assert "response_format" not in seen[0]
    assert claims.INSTRUCTIONS not in seen[0]["messages"][0]["content"]
    assert reply.claims is None and reply.text == "Red light. [1]"
    unstructured = REQUEST.model_copy(update={"structured": False})
    await generate_grounded(b, unstructured, "t_x", Router(b, [OPENAI], sleep=no_sleep))
    assert "response_format" not in seen[1]
    with pytest.raises(ServiceUnavailable, match="true or false"):
        configured(bindings({}, EDGERAG_LLM_PROVIDERS="openai", EDGERAG_OPENAI_STRUCTURED="maybe"))


def _plain_openai(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    message = {"role": "assistant", "content": "Red light. [1]"}
    return httpx.Response(
        200,
        json={
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4},
        },
    )


# --- parsing: lenient about form, strict about fields --------------------------------------
def test_parse_drops_and_counts_items_that_break_the_schema() -> None:
    good = {"text": "Red.", "source": 1, "quote": "red"}
    parsed = claims.parse(
        {
            "claims": [
                good,
                {"text": "No quote.", "source": 1},
                {"text": "Bad source.", "source": 0, "quote": "x"},
                {"text": "Bool source.", "source": True, "quote": "x"},
                {"text": "   ", "source": 1, "quote": "x"},
                {"text": "Huge.", "source": 1, "quote": "x" * (claims.MAX_FIELD_CHARS + 1)},
                "a string",
                {"text": "Quoted number.", "source": "2", "quote": "y"},
            ]
        }
    )
    assert parsed is not None
    assert [c.text for c in parsed.claims] == ["Red.", "Quoted number."]
    assert parsed.claims[1].source == 2 and parsed.malformed == 6


def test_parse_caps_the_number_of_claims() -> None:
    many = {"claims": [{"text": f"c{i}", "source": 1, "quote": "q"} for i in range(40)]}
    parsed = claims.parse(many)
    assert parsed is not None
    assert len(parsed.claims) == claims.MAX_CLAIMS and parsed.malformed == 10


@pytest.mark.parametrize("value", ["not json", "[1, 2]", '{"answer": "x"}', 7, None])
def test_what_is_not_a_claims_object(value: Any) -> None:
    assert claims.parse(value) is None


# --- the streaming scanner ----------------------------------------------------------------
TRICKY: dict[str, list[dict[str, Any]]] = {
    "claims": [
        {"text": 'Braces {like} these and "quotes" [1].', "source": 1, "quote": "a \\ b }"},
        {"text": "Unicode: é — ü 😀.", "source": 2, "quote": "é"},
    ]
}


def scan(pieces: list[str]) -> tuple[list[GeneratedClaim], claims.ClaimScanner]:
    scanner = claims.ClaimScanner()
    out: list[GeneratedClaim] = []
    for piece in pieces:
        out.extend(scanner.feed(piece))
    scanner.finish()
    return out, scanner


def test_scanner_at_every_split_point() -> None:
    text = json.dumps(TRICKY, ensure_ascii=False)
    expected = [GeneratedClaim(**c) for c in TRICKY["claims"]]
    for cut in range(len(text) + 1):
        got, scanner = scan([text[:cut], text[cut:]])
        assert got == expected, cut
        assert scanner.json is True and scanner.malformed == 0


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_scanner_in_arbitrary_pieces(sizes: list[int]) -> None:
    text = json.dumps(TRICKY, indent=2)
    pieces, at = [], 0
    for size in sizes:
        pieces.append(text[at : at + size])
        at += size
    pieces.append(text[at:])
    got, _ = scan(pieces)
    assert got == [GeneratedClaim(**c) for c in TRICKY["claims"]]


def test_scanner_releases_each_claim_as_it_closes() -> None:
    text = json.dumps(CLAIMS)
    first_end = text.index("}") + 1
    scanner = claims.ClaimScanner()
    assert [c.source for c in scanner.feed(text[:first_end])] == [1]
    assert [c.source for c in scanner.feed(text[first_end:])] == [2]


def test_scanner_counts_truncated_and_broken_claims() -> None:
    cut = json.dumps(CLAIMS)[:-30]  # the stream ended inside the second claim
    got, scanner = scan([cut])
    assert len(got) == 1 and scanner.malformed == 1
    broken = '{"claims": [{"text": "x", "source": "one", "quote": "q"}, {"text": "y", "source": 1, "quote": "q"}]}'
    got, scanner = scan([broken])
    assert [c.text for c in got] == ["y"] and scanner.malformed == 1


def test_scanner_skips_an_endless_claim_and_reads_on() -> None:
    endless = "x" * (claims.MAX_ITEM_CHARS + 10)
    text = json.dumps(
        {"claims": [{"text": endless, "source": 1, "quote": "q"}, CLAIMS["claims"][0]]}
    )
    got, scanner = scan([text])
    assert got == [GeneratedClaim(**CLAIMS["claims"][0])] and scanner.malformed == 1


@pytest.mark.parametrize(
    ("head", "is_json"), [("  \n{", True), ("```json\n{", True), ("Red", False)]
)
def test_scanner_detects_the_format_from_the_first_characters(head: str, is_json: bool) -> None:
    scanner = claims.ClaimScanner()
    assert scanner.feed("  ") == [] and scanner.json is None
    scanner.feed(head)
    assert scanner.json is is_json


# --- streaming, end to end through the llm Worker's handler --------------------------------
async def events(stream: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event, json.loads(e.data)) async for e in sse.parse(stream)]


async def test_openai_json_stream_becomes_claim_events() -> None:
    text = json.dumps(CLAIMS)
    frames = [openai_chunk(text[i : i + 7]) for i in range(0, len(text), 7)]
    reply = sse_reply(*frames, USAGE, b"data: [DONE]\n\n")
    b = bindings({"openai.test": lambda request: reply})
    router = Router(b, [OPENAI], sleep=no_sleep)
    got = await events(
        await stream_grounded(b, REQUEST.model_copy(update={"stream": True}), "t", router)
    )
    names = [name for name, _ in got]
    assert names == ["start", "claim", "claim", "end"]
    assert got[1][1]["text"] == "Chlorophyll absorbs red light." and got[1][1]["source"] == 1
    assert got[-1][1]["malformed_claims"] == 0 and got[-1][1]["usage"]["total_tokens"] == 13


async def test_anthropic_tool_input_streams_as_claims() -> None:
    text = json.dumps(CLAIMS)

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] is True and body["tool_choice"]["name"] == claims.TOOL_NAME
        block = {"type": "tool_use", "id": "toolu_1", "name": claims.TOOL_NAME, "input": {}}
        deltas = [
            anthropic_event(
                "content_block_delta",
                index=0,
                delta={"type": "input_json_delta", "partial_json": text[i : i + 11]},
            )
            for i in range(0, len(text), 11)
        ]
        return sse_reply(
            anthropic_event("message_start", message={"usage": {"input_tokens": 30}}),
            anthropic_event("content_block_start", index=0, content_block=block),
            *deltas,
            anthropic_event("content_block_stop", index=0),
            anthropic_event(
                "message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 25}
            ),
            anthropic_event("message_stop"),
        )

    b = bindings({"anthropic.test": handle})
    router = Router(b, [ANTHROPIC], sleep=no_sleep)
    got = await events(await stream_grounded(b, REQUEST, "t", router))
    assert [n for n, _ in got] == ["start", "claim", "claim", "end"]
    assert got[2][1]["quote"] == "reflects green light"


async def test_a_stream_that_ignores_the_schema_goes_out_as_deltas() -> None:
    reply = sse_reply(openai_chunk("Red "), openai_chunk("light. [1]"), b"data: [DONE]\n\n")
    b = bindings({"openai.test": lambda request: reply})
    got = await events(await stream_grounded(b, REQUEST, "t", Router(b, [OPENAI], sleep=no_sleep)))
    assert [n for n, _ in got] == ["start", "delta", "delta", "end"]
    assert "".join(d["text"] for n, d in got if n == "delta") == "Red light. [1]"


async def test_workers_ai_streams_without_the_schema() -> None:
    """Workers AI refuses JSON mode with `stream: true` (AiError 5023), so its stream is asked
    for [n]-marker text and the system prompt does not mention claims."""

    class StreamingAI:
        def __init__(self) -> None:
            self.inputs: list[Mapping[str, Any]] = []

        async def stream(self, model: str, inputs: Mapping[str, Any]) -> Any:
            if inputs.get("response_format") is not None:
                raise BindingError("JSON Schema mode is not supported with stream mode")
            self.inputs.append(inputs)

            async def chunks() -> Any:
                yield b'data: {"response": "Red light. [1]"}\n\n'
                yield b"data: [DONE]\n\n"

            return chunks()

    ai = StreamingAI()
    b = with_ai(bindings({}), ai)
    got = await events(
        await stream_grounded(b, REQUEST, "t", Router(b, [WORKERS_AI], sleep=no_sleep))
    )
    assert [n for n, _ in got] == ["start", "delta", "end"]
    assert claims.INSTRUCTIONS not in ai.inputs[0]["messages"][0]["content"]


# --- the tenant narrows the operator's chain ------------------------------------------------
async def test_tenant_allowed_providers_and_models_narrow_the_chain() -> None:
    b = bindings(
        {
            "anthropic.test": anthropic_tool_reply,
            "openai.test": openai_json_reply(json.dumps(CLAIMS)),
        }
    )
    request = REQUEST.model_copy(update={"providers": ["openai", "workers-ai"]})
    router = Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, providers=request.providers)
    reply = await generate_grounded(b, request, "t_x", router)
    assert reply.provider == "openai"
    assert [(a.provider, a.outcome) for a in reply.tried] == [
        ("anthropic", "not_allowed"),
        ("openai", "ok"),
    ]
    by_model = Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, models=["claude-test"])
    assert (await generate_grounded(b, REQUEST, "t_x", by_model)).provider == "anthropic"


async def test_nothing_allowed_is_a_clear_409_not_a_retry_later() -> None:
    b = bindings({"anthropic.test": anthropic_tool_reply})
    router = Router(b, [ANTHROPIC], sleep=no_sleep, providers=["dedalus"])
    with pytest.raises(NoAllowedProvider) as refused:
        await generate_grounded(b, REQUEST, "t_x", router)
    assert refused.value.status == 409 and refused.value.code == "no_allowed_provider"
    assert "retry-after" not in refused.value.headers
    assert refused.value.details["tried"] == [
        {"provider": "anthropic", "model": "claude-test", "outcome": "not_allowed"}
    ]


async def test_generation_builds_the_router_from_the_request() -> None:
    b = bindings(
        {"anthropic.test": anthropic_tool_reply},
        kv=EmulatedKV(None),
        EDGERAG_LLM_PROVIDERS="anthropic,openai",
        ANTHROPIC_API_KEY="k",
        ANTHROPIC_BASE_URL="https://anthropic.test",
        OPENAI_BASE_URL="https://openai.test",
    )
    with pytest.raises(NoAllowedProvider):
        await generate_grounded(b, REQUEST.model_copy(update={"models": ["gpt-9"]}), "t_x")
    reply = await generate_grounded(
        b, REQUEST.model_copy(update={"providers": ["anthropic"]}), "t_x"
    )
    assert reply.provider == "anthropic"
