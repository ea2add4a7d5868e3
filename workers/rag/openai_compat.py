"""OpenAI-compatible routes: the caller's knowledge base as models (kernel.contracts.openai).

`GET /models[/{model}]` lists them; `POST /chat/completions` answers the conversation's last
user message through rag.conversation — the chat path without a session — as one
`chat.completion` or, with `stream: true`, as `chat.completion.chunk` events (rag.openai_stream).
The answer's text carries its [n] markers and a "Sources:" list (rag.references); the verified
citations and edgerag's view of the answer ride along as `message.citations` and
`message.edgerag`. Tokens are reported for the gateway's budget as every answer's are: the
usage header on JSON, internal `usage` events in a stream.
"""

from __future__ import annotations

import time

from kernel.bindings.env import Bindings
from kernel.contracts.openai import (
    MODELS,
    MODELS_CREATED,
    AnswerExtras,
    AssistantMessage,
    CompletionChoice,
    OpenAIChatCompletion,
    OpenAIChatRequest,
    OpenAIModel,
    OpenAIModelList,
)
from kernel.domain.paging import only_params
from kernel.domain.tenancy import scope_from_request
from kernel.runtime import sse
from kernel.runtime.http import Request, Response, json_response
from rag import conversation
from rag.conversation import Conversation, mode_of
from rag.openai_stream import Head, completion_chunks, usage_of
from rag.references import footer
from rag.replies import spent


def card(model: str, tenant_id: str) -> OpenAIModel:
    return OpenAIModel(id=model, created=MODELS_CREATED, owned_by=tenant_id)


class OpenAIRoutes:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def list_models(self, request: Request) -> Response:
        only_params(request.query)
        tenant = scope_from_request(request).tenant_id
        listed = OpenAIModelList(data=[card(m, tenant) for m in MODELS])
        return json_response(listed.model_dump())

    async def get_model(self, request: Request) -> Response:
        only_params(request.query)
        model = request.params["model"]
        mode_of(model)  # 404 model_not_found
        return json_response(card(model, scope_from_request(request).tenant_id).model_dump())

    async def chat_completions(self, request: Request) -> Response:
        body = request.model(OpenAIChatRequest)
        talk = Conversation(body.question(), body.history(), body.model, body.filters)
        turn = await conversation.prepare(self.b, request, talk)
        created = int(time.time())
        completion_id = f"chatcmpl-{request.request_id}"  # the id the logs carry
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            head = Head(completion_id, created, body.model, usage)
            items = await conversation.streamed(self.b, request, talk, turn)
            return Response(
                status=200,
                headers=dict(sse.HEADERS),
                stream=completion_chunks(items, head, turn.retrieval_query),
            )
        result = await conversation.answered(self.b, request, talk, turn)
        message = AssistantMessage(
            content=result.answer + footer(result.citations),
            citations=result.citations,
            edgerag=AnswerExtras(
                confidence=result.confidence,
                abstained=result.abstained,
                follow_ups=result.follow_ups,
                intent=result.intent,
                retrieval_query=turn.retrieval_query,
                dropped_sentences=result.dropped_sentences,
                generated_by=result.generated_by,
            ),
        )
        reply = OpenAIChatCompletion(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[CompletionChoice(message=message)],
            usage=usage_of(result.usage),
        )
        return spent(json_response(reply.model_dump()), result.usage.get("total_tokens", 0))
