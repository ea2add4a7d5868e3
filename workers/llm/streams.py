"""Token streams in each provider's documented streaming wire format.

- OpenAI-compatible (`openai`, `dedalus`): `"stream": true` with
  `"stream_options": {"include_usage": true}`; data-only events, each a `chat.completion.chunk`
  whose `choices[0].delta.content` carries text, a last chunk with `usage` and empty `choices`,
  then `data: [DONE]`. An `{"error": {...}}` object may arrive mid-stream.
- Anthropic Messages (`"stream": true`): `message_start` (input tokens), `content_block_start`,
  `content_block_delta` with `text_delta`s (`input_json_delta`s for a tool's input),
  `content_block_stop`, `message_delta` (output
  tokens), `message_stop`; `ping` at any time; `error` events such as `overloaded_error`.
- Workers AI (`stream: true` on the AI binding): data-only events `{"response": "<text>"}`, the
  last one possibly with `usage`, then `data: [DONE]`.

`open_stream` returns once the provider accepted the request (an error status is raised as a
`ProviderFailure` before any token); the pieces follow — `Delta`s, and one `Tokens` when the
provider reports usage. A stream that ends without its terminator is `truncated`; an unreadable
event is `malformed`. Closing the iterator closes the connection (the provider stops).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.ports import BindingError, HttpError, HttpStream
from kernel.runtime import sse
from llm.providers import (
    ANTHROPIC_VERSION,
    Provider,
    ProviderFailure,
    anthropic_body,
    http_failure,
    openai_body,
)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Tokens:
    prompt: int
    completion: int


Piece = Delta | Tokens
_ANTHROPIC_ERRORS = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limited",
    "api_error": "server",
    "timeout_error": "timeout",
}


async def open_stream(
    p: Provider,
    b: Bindings,
    system: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    schema: dict[str, Any] | None = None,
) -> AsyncIterator[Piece]:
    """`schema`: stream a JSON object of that schema — OpenAI-compatible content deltas, or
    Anthropic's forced tool input as `input_json_delta`s; either way the `Delta`s are its JSON
    text. Workers AI refuses JSON mode with `stream: true`, so it never gets one."""
    if p.name == "workers-ai":
        return await _workers_ai(p, b, system, messages, max_tokens)
    if p.name == "anthropic":
        body = anthropic_body(p, system, messages, max_tokens, schema) | {"stream": True}
        headers = {"x-api-key": p.api_key, "anthropic-version": ANTHROPIC_VERSION}
        reply = await _open(p, b, "/v1/messages", headers, body)
        return _anthropic(p, reply)
    body = openai_body(p, system, messages, max_tokens, schema) | {
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"authorization": f"Bearer {p.api_key}"} if p.api_key else {}
    return _openai(p, await _open(p, b, "/v1/chat/completions", headers, body))


async def _open(
    p: Provider, b: Bindings, path: str, headers: dict[str, str], body: dict[str, Any]
) -> HttpStream:
    http = b.need(b.http, "HTTP")
    try:
        reply = await http.open(
            "POST",
            p.base_url.rstrip("/") + path,
            headers={
                "content-type": "application/json",
                "accept": "text/event-stream",
                **headers,
            },
            body=json.dumps(body).encode(),
            timeout_s=p.timeout_s,
        )
    except HttpError as exc:
        raise ProviderFailure(p.name, exc.kind, str(exc)) from exc
    if reply.status >= 400:
        raise http_failure(p.name, reply.status, reply.headers, await reply.read())
    return reply


def _object(p: Provider, event: sse.Event) -> dict[str, Any]:
    try:
        data = event.json()
    except ValueError as exc:
        raise ProviderFailure(p.name, "malformed", "a stream event is not JSON") from exc
    if not isinstance(data, dict):
        raise ProviderFailure(p.name, "malformed", "a stream event is not a JSON object")
    return data


async def _events(p: Provider, chunks: AsyncIterator[bytes]) -> AsyncIterator[sse.Event]:
    """The provider's events, with transport and size failures as ProviderFailures."""
    try:
        async for event in sse.parse(chunks):
            yield event
    except HttpError as exc:
        raise ProviderFailure(p.name, exc.kind, str(exc)) from exc
    except sse.StreamTooLarge as exc:
        raise ProviderFailure(p.name, "malformed", str(exc)) from exc


async def _openai(p: Provider, reply: HttpStream) -> AsyncIterator[Piece]:
    try:
        async for event in _events(p, reply.chunks):
            if event.data.strip() == "[DONE]":
                return
            data = _object(p, event)
            error = data.get("error")
            if isinstance(error, dict):
                kind = "rate_limited" if error.get("code") == "rate_limit_exceeded" else "server"
                raise ProviderFailure(
                    p.name, kind, f"{p.name} stream error: {error.get('message', '')}"[:300]
                )
            for choice in data.get("choices") or []:
                text = (
                    (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
                )
                if isinstance(text, str) and text:
                    yield Delta(text)
            usage = data.get("usage")
            if isinstance(usage, dict):
                yield Tokens(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
    finally:
        await reply.aclose()
    raise ProviderFailure(p.name, "truncated", f"{p.name}: the stream ended before [DONE]")


async def _anthropic(p: Provider, reply: HttpStream) -> AsyncIterator[Piece]:
    prompt = completion = 0
    try:
        async for event in _events(p, reply.chunks):
            data = _object(p, event)
            kind = str(data.get("type") or event.event)
            if kind == "message_start":
                usage = (data.get("message") or {}).get("usage") or {}
                prompt = int(usage.get("input_tokens") or 0)
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield Delta(str(delta["text"]))
                elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                    yield Delta(str(delta["partial_json"]))  # the forced tool's input, as JSON
            elif kind == "message_delta":
                completion = int((data.get("usage") or {}).get("output_tokens") or completion)
            elif kind == "message_stop":
                yield Tokens(prompt, completion)
                return
            elif kind == "error":
                error = data.get("error") or {}
                raise ProviderFailure(
                    p.name,
                    _ANTHROPIC_ERRORS.get(str(error.get("type")), "server"),
                    f"anthropic stream error: {error.get('type')} {error.get('message', '')}"[:300],
                )
            # ping, content_block_start/stop: nothing to do
    finally:
        await reply.aclose()
    raise ProviderFailure(p.name, "truncated", "anthropic: the stream ended before message_stop")


async def _workers_ai(
    p: Provider, b: Bindings, system: str, messages: list[dict[str, str]], max_tokens: int
) -> AsyncIterator[Piece]:
    ai = b.need(b.ai, "AI")
    inputs = {
        "messages": [{"role": "system", "content": system}, *messages],
        "max_tokens": max_tokens,
    }
    stream = getattr(ai, "stream", None)
    if stream is None:  # an AI port without streaming: the whole reply as one piece
        done = await p.complete(b, system, messages, max_tokens)

        async def whole() -> AsyncIterator[Piece]:
            yield Delta(done.text)
            yield Tokens(done.prompt_tokens, done.completion_tokens)

        return whole()
    try:
        chunks = await stream(p.model, inputs)
    except BindingError as exc:
        raise ProviderFailure(p.name, "server", f"{p.model} failed: {exc}") from exc
    return _workers_ai_pieces(p, chunks)


async def _workers_ai_pieces(p: Provider, chunks: AsyncIterator[bytes]) -> AsyncIterator[Piece]:
    try:
        async for event in _events(p, _binding_errors(p, chunks)):
            if event.data.strip() == "[DONE]":
                return
            data = _object(p, event)
            text = data.get("response")
            if isinstance(text, str) and text:
                yield Delta(text)
            usage = data.get("usage")
            if isinstance(usage, dict):
                yield Tokens(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    raise ProviderFailure(p.name, "truncated", f"{p.model}: the stream ended before [DONE]")


async def _binding_errors(p: Provider, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    except BindingError as exc:
        raise ProviderFailure(p.name, "server", f"{p.model} stream failed: {exc}") from exc
