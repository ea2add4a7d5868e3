"""A live answer (rag.live) as OpenAI `chat.completion.chunk` events.

The first chunk names the role; then each verified sentence is sent word by word as `content`
deltas (the text so far is always verified, as in chat streams), then the "Sources:" list
(rag.references) as one more delta, then the chunk with `finish_reason: "stop"` whose delta
carries the extensions `citations` (every verified citation) and `edgerag` (confidence,
abstained, …). With `stream_options.include_usage` a chunk with no choices and the usage
follows, as OpenAI sends it, and `data: [DONE]` ends the stream. A failure after the first
chunk is `data: {"error": …}` (the SDKs raise it). Internal `usage` events for the gateway's
budget are interleaved; the gateway removes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kernel.contracts.api import Citation
from kernel.contracts.openai import (
    DONE,
    ChunkChoice,
    ChunkDelta,
    CompletionUsage,
    OpenAIChatChunk,
    data_event,
    stream_error,
)
from kernel.contracts.rag import SpentEvent
from kernel.runtime.logs import log
from rag.chat import sse
from rag.conversation import extras, words
from rag.live import Failed, Item, Sentence, Spent
from rag.references import footer


@dataclass(frozen=True)
class Head:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str
    include_usage: bool = False


def usage_of(usage: dict[str, int]) -> CompletionUsage:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return CompletionUsage.model_validate({k: int(usage.get(k, 0)) for k in keys})


def encode(head: Head, chunk: OpenAIChatChunk) -> bytes:
    body: dict[str, Any] = chunk.model_dump()
    for choice in body["choices"]:  # a delta names only what it adds (nulls inside stay)
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    if not head.include_usage:
        del body["usage"]  # OpenAI sends `usage: null` only to those who asked for it
    return data_event(body)


async def completion_chunks(
    items: AsyncIterator[Item], head: Head, retrieval_query: str
) -> AsyncIterator[bytes]:
    def chunk(delta: ChunkDelta, finish: bool = False) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason="stop" if finish else None)
        made = OpenAIChatChunk(id=head.id, created=head.created, model=head.model, choices=[choice])
        return encode(head, made)

    cited: list[Citation] = []
    sentences = 0
    try:
        yield chunk(ChunkDelta(role="assistant", content=""))
        async for item in items:
            if isinstance(item, Sentence):
                for word in words(item.text, sentences):
                    yield chunk(ChunkDelta(content=word))
                sentences += 1
                cited.extend(item.citations)
            elif isinstance(item, Spent):
                yield sse("usage", SpentEvent(tokens=item.tokens))
            elif isinstance(item, Failed):
                yield stream_error(item.code, item.message)
                return
            else:
                if cited:
                    yield chunk(ChunkDelta(content=footer(cited)))
                delta = ChunkDelta(citations=cited, edgerag=extras(item, retrieval_query))
                yield chunk(delta, finish=True)
                if head.include_usage:
                    last = OpenAIChatChunk(
                        id=head.id,
                        created=head.created,
                        model=head.model,
                        choices=[],
                        usage=usage_of(item.usage),
                    )
                    yield encode(head, last)
                yield DONE
    except Exception as exc:
        log("openai_stream_error", level="error", error=repr(exc)[:300])
        yield stream_error("internal_error", "the answer could not be completed")
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()  # the reader went away: the model stops writing
