"""Provider token streams over their real streaming wire formats, the SSE parser under them,
and the router's streaming rules (fallback only before the first token)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulator.kv import EmulatedKV
from kernel.runtime import sse
from llm.providers import Provider, ProviderFailure
from llm.router import Router
from llm.streams import Delta, Tokens, open_stream
from tests.unit.test_llm_providers import ANTHROPIC, ASK, OPENAI, SYSTEM, bindings


def sse_reply(*frames: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "text/event-stream"}, content=b"".join(frames)
    )


def openai_chunk(text: str) -> bytes:
    chunk = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


USAGE = (
    b'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n'
)


def anthropic_event(name: str, **data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


async def pieces(provider: Provider, reply: httpx.Response) -> list[Any]:
    b = bindings({provider.base_url.split("//")[1]: lambda request: reply})
    stream = await open_stream(provider, b, SYSTEM, ASK, 64)
    return [p async for p in stream]


async def test_openai_stream_deltas_and_usage() -> None:
    got = await pieces(
        OPENAI,
        sse_reply(openai_chunk("Red "), openai_chunk("light. [1]"), USAGE, b"data: [DONE]\n\n"),
    )
    assert got == [Delta("Red "), Delta("light. [1]"), Tokens(9, 4)]


async def test_openai_stream_request_asks_for_usage() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return sse_reply(openai_chunk("x"), b"data: [DONE]\n\n")

    stream = await open_stream(OPENAI, bindings({"openai.test": handler}), SYSTEM, ASK, 64)
    assert [p async for p in stream] == [Delta("x")]
    assert seen[0]["stream"] is True and seen[0]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("frames", "kind"),
    [
        ((openai_chunk("Red"),), "truncated"),  # no [DONE]
        ((openai_chunk("Red"), b"data: {not json\n\n"), "malformed"),
        ((b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n',), "server"),
        ((b"data: [1, 2]\n\n",), "malformed"),
    ],
)
async def test_openai_stream_failures(frames: tuple[bytes, ...], kind: str) -> None:
    with pytest.raises(ProviderFailure) as failure:
        await pieces(OPENAI, sse_reply(*frames))
    assert failure.value.kind == kind


async def test_anthropic_stream_with_pings_and_usage() -> None:
    reply = sse_reply(
        anthropic_event(
            "message_start", message={"usage": {"input_tokens": 30, "output_tokens": 1}}
        ),
        anthropic_event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        anthropic_event("ping"),
        anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": "Red."}
        ),
        anthropic_event("content_block_stop", index=0),
        anthropic_event(
            "message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 5}
        ),
        anthropic_event("message_stop"),
    )
    assert await pieces(ANTHROPIC, reply) == [Delta("Red."), Tokens(30, 5)]


@pytest.mark.parametrize(
    ("error", "kind"), [("overloaded_error", "overloaded"), ("rate_limit_error", "rate_limited")]
)
async def test_anthropic_error_event_mid_stream(error: str, kind: str) -> None:
    reply = sse_reply(
        anthropic_event(
            "content_block_delta", index=0, delta={"type": "text_delta", "text": "Red"}
        ),
        anthropic_event("error", error={"type": error, "message": "Overloaded"}),
    )
    b = bindings({"anthropic.test": lambda request: reply})
    stream = await open_stream(ANTHROPIC, b, SYSTEM, ASK, 64)
    assert await anext(stream) == Delta("Red")
    with pytest.raises(ProviderFailure) as failure:
        await anext(stream)
    assert failure.value.kind == kind


async def test_an_error_status_fails_before_any_token() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    b = bindings({"anthropic.test": lambda request: httpx.Response(529, json=body)})
    with pytest.raises(ProviderFailure) as failure:
        await open_stream(ANTHROPIC, b, SYSTEM, ASK, 64)
    assert failure.value.kind == "overloaded" and "overloaded_error" in str(failure.value)


async def test_router_falls_back_before_the_first_token_only() -> None:
    calls: list[str] = []

    def truncated(request: httpx.Request) -> httpx.Response:
        calls.append("openai")
        return sse_reply(b": keep-alive\n\n")  # ends without a token or [DONE]

    def good(request: httpx.Request) -> httpx.Response:
        calls.append("anthropic")
        return sse_reply(
            anthropic_event(
                "content_block_delta", index=0, delta={"type": "text_delta", "text": "Red."}
            ),
            anthropic_event("message_stop"),
        )

    b = bindings({"openai.test": truncated, "anthropic.test": good}, kv=EmulatedKV(None))

    async def no_wait(_: float) -> None:
        return None

    routed, tried = await Router(b, [OPENAI, ANTHROPIC], sleep=no_wait).stream(
        "t_1", SYSTEM, ASK, 64
    )
    assert [p async for p in routed.pieces] == [Delta("Red."), Tokens(0, 0)]
    assert calls == ["openai"] * 3 + ["anthropic"]  # two retries, then the next provider
    assert [(a.provider, a.outcome) for a in tried] == [
        ("openai", "truncated"),
        ("anthropic", "ok"),
    ]
    assert routed.ttft_ms >= 0


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_sse_parser_across_chunk_boundaries_and_line_endings() -> None:
    stream = _chunks(
        b"event: a\r", b"\ndata: 1\r\n\r\n: comment\n", b"data: x\ndata: y\n\nda", b"ta: z"
    )
    got = [(e.event, e.data) async for e in sse.parse(stream)]
    assert got == [("a", "1"), ("message", "x\ny"), ("message", "z")]


async def test_sse_parser_bounds_an_endless_line() -> None:
    with pytest.raises(sse.StreamTooLarge):
        _ = [e async for e in sse.parse(_chunks(b"data: " + b"x" * 5000), max_event_bytes=1000)]
