"""`POST /ai-sdk/chat`: a `useChat` conversation answered as an AI SDK UI message stream (v1).

The body is DefaultChatTransport's (kernel.contracts.ai_sdk); the answer is rag.conversation's
live answer — the chat path without a session — as UI message chunks:

  start {messageId} · start-step · text-start · text-delta… with a source-document after each
  sentence for each citation it adds · text-end · finish-step · finish {messageMetadata} ·
  [DONE]

Only verified sentences are sent, as in every stream. A source's `sourceId` is its marker's
number ("1" for [1]), its title the document's, and `providerMetadata.edgerag` the complete
verified citation (page, offsets, quote). `finish.messageMetadata` has confidence, abstained,
follow-ups, the retrieval query and usage. A failure once started is an `error` chunk and
`[DONE]`. Internal `usage` events for the gateway's budget are interleaved; it removes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from kernel.bindings.env import Bindings
from kernel.contracts.ai_sdk import DONE, HEADER, VERSION, AiSdkChatRequest, chunk, stream_error
from kernel.contracts.api import Citation
from kernel.contracts.rag import SpentEvent
from kernel.runtime import sse
from kernel.runtime.http import Request, Response
from kernel.runtime.ids import new_id
from kernel.runtime.logs import log
from rag import conversation
from rag.chat import sse as internal_event
from rag.conversation import Conversation, extras, words
from rag.live import Failed, Item, Sentence, Spent

HEADERS = {**sse.HEADERS, HEADER: VERSION, "x-accel-buffering": "no"}


def source(citation: Citation) -> bytes:
    return chunk(
        "source-document",
        sourceId=str(citation.n),
        mediaType="text/plain",  # what is quoted: the document's extracted text
        title=citation.title,
        providerMetadata={"edgerag": citation.model_dump()},
    )


async def ui_message_chunks(
    items: AsyncIterator[Item], message_id: str, retrieval_query: str
) -> AsyncIterator[bytes]:
    text_id = f"{message_id}_text"
    sentences = 0
    opened = False
    try:
        yield chunk("start", messageId=message_id)
        yield chunk("start-step")
        yield chunk("text-start", id=text_id)
        opened = True
        async for item in items:
            if isinstance(item, Sentence):
                for word in words(item.text, sentences):
                    yield chunk("text-delta", id=text_id, delta=word)
                sentences += 1
                for citation in item.citations:
                    yield source(citation)
            elif isinstance(item, Spent):
                yield internal_event("usage", SpentEvent(tokens=item.tokens))
            elif isinstance(item, Failed):
                opened = False
                yield chunk("text-end", id=text_id) + stream_error(item.code, item.message)
                return
            else:
                opened = False
                yield chunk("text-end", id=text_id)
                yield chunk("finish-step")
                metadata = {
                    **extras(item, retrieval_query).model_dump(),
                    "usage": item.usage,
                }
                yield chunk("finish", messageMetadata=metadata)
                yield DONE
    except Exception as exc:
        log("ai_sdk_stream_error", level="error", error=repr(exc)[:300])
        ended = chunk("text-end", id=text_id) if opened else b""
        yield ended + stream_error("internal_error", "the answer could not be completed")
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()  # the reader went away: the model stops writing


class AiSdkRoutes:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def chat(self, request: Request) -> Response:
        body = request.model(AiSdkChatRequest)
        talk = Conversation(body.question(), body.history(), body.model, body.filters)
        turn = await conversation.prepare(self.b, request, talk)
        items = await conversation.streamed(self.b, request, talk, turn)
        return Response(
            status=200,
            headers=dict(HEADERS),
            stream=ui_message_chunks(items, new_id("msg"), turn.retrieval_query),
        )
