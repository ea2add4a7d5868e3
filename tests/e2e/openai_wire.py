"""A non-streamed OpenAI-compatible chat completion, as `/v1/chat/completions` answers it, for
the transport-level provider fakes."""

from __future__ import annotations

from typing import Any

import httpx


def completion(
    content: str | None,
    usage: tuple[int, int],
    *,
    tool_calls: list[dict[str, Any]] | None = None,
) -> httpx.Response:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls or None
    prompt, produced = usage
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": produced,
                "total_tokens": prompt + produced,
            },
        },
    )
