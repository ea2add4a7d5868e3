"""The Vercel AI SDK's UI message stream (protocol v1, AI SDK 5): `POST /v1/ai-sdk/chat`.

The request is what `useChat`'s DefaultChatTransport posts — `{id, messages: UIMessage[],
trigger, messageId?}` plus whatever the app adds with the transport's `body` — and the reply is
`text/event-stream` with `x-vercel-ai-ui-message-stream: v1`: `data: {"type": …}` chunks, then
`data: [DONE]`. The SDK validates each chunk against a strict schema (an unknown key fails the
stream), so chunks carry only the keys AI SDK 5 declares; edgerag's citation details ride in
the one open slot each part has, `providerMetadata.edgerag`, and the answer's confidence in
`finish.messageMetadata`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel.contracts.api import SearchFilters, Strict
from kernel.contracts.openai import MAX_MESSAGE_CHARS, MAX_MESSAGES, check_question

HEADER = "x-vercel-ai-ui-message-stream"
VERSION = "v1"
DONE = b"data: [DONE]\n\n"


class UIPart(BaseModel):
    """A part of an earlier message: text is read; every other kind the SDK keeps on a message
    (sources, steps, tools, files, data-*) is passed over, whatever keys it has."""

    model_config = ConfigDict(extra="ignore", strict=True)
    type: str = Field(min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class UIMessage(Strict):
    id: str = Field(max_length=200)
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart] = Field(max_length=500)
    metadata: Any = None

    def text(self) -> str:
        return "".join(p.text or "" for p in self.parts if p.type == "text")


class AiSdkChatRequest(Strict):
    id: str = Field(min_length=1, max_length=200)  # the chat's id (the client keeps the chat)
    messages: list[UIMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: str | None = Field(default=None, max_length=200)
    # edgerag's additions, sent with the transport's `body` option.
    model: str = Field(default="edgerag", min_length=1, max_length=200)
    filters: SearchFilters | None = None

    @field_validator("messages")
    @classmethod
    def ends_with_a_question(cls, messages: list[UIMessage]) -> list[UIMessage]:
        last = messages[-1]
        check_question(last.role, last.text())
        attached = sorted({p.type for p in last.parts} - {"text", "step-start"})
        if attached:  # the question's own attachments would be ignored: say so instead
            raise ValueError(f"the question has {attached} parts: edgerag reads text parts only")
        return messages

    def question(self) -> str:
        return self.messages[-1].text()

    def history(self) -> list[dict[str, str]]:
        """Earlier user and assistant turns with text; system messages are not obeyed."""
        turns = [(m.role, m.text()) for m in self.messages[:-1]]
        return [{"role": r, "content": t} for r, t in turns if r != "system" and t]


def chunk(type_: str, **fields: Any) -> bytes:
    """One UI message chunk as a server-sent event (fields that are None are left out: the
    SDK's schema has optional keys, never null ones)."""
    payload = {"type": type_, **{k: v for k, v in fields.items() if v is not None}}
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def stream_error(code: str, message: str) -> bytes:
    """How a UI message stream fails once started: an `error` chunk, then the terminator.
    Used by the rag Worker (the model stopped) and the gateway (the budget ran out)."""
    return chunk("error", errorText=f"{code}: {message}") + DONE
