"""Token budgets for streamed answers: the reservation follows the stream as it is spent.

The rag Worker reports what a stream has spent so far in internal `usage` events
(kernel.contracts.rag.SpentEvent). The gateway takes them out of what it forwards; when one
goes past what the request reserved it reserves another slice (gateway.budget.extend), and when
the budget has no room left the stream ends with an `error` event `token_budget_exhausted` —
closing the upstream, which stops the model. The reservation is settled to the last figure
when the stream ends, however it ends (done, error, client gone). The ending is written in the
route's stream format (Route.stream_format): the OpenAI and AI SDK clients read only their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import ValidationError

from gateway import budget
from gateway.route import StreamFormat
from kernel.contracts import ai_sdk, openai
from kernel.contracts.rag import INTERNAL_EVENTS, ErrorEvent, SpentEvent
from kernel.domain.tenancy import TenantDB
from kernel.runtime import sse
from kernel.runtime.logs import log


def forwarded(event: sse.Event) -> bytes:
    """An event re-encoded as it came (the data is passed through unparsed)."""
    lines = "".join(f"data: {line}\n" for line in event.data.split("\n"))
    name = "" if event.event == "message" else f"event: {event.event}\n"
    return f"{name}{lines}\n".encode()


def ended(ending: ErrorEvent, form: StreamFormat) -> bytes:
    """The last event of a stream the gateway ends, as the route's clients read one."""
    if form == "openai":
        return openai.stream_error(ending.code, ending.message)
    if form == "ai-sdk":
        return ai_sdk.stream_error(ending.code, ending.message)
    return sse.encode("error", ending.model_dump())


async def metered(
    db: TenantDB,
    held: budget.Reservation,
    step: int,
    stream: AsyncIterator[bytes],
    form: StreamFormat = "edgerag",
) -> AsyncIterator[bytes]:
    spent = 0
    try:
        async for event in sse.parse(stream):
            if event.event not in INTERNAL_EVENTS:
                yield forwarded(event)
                continue
            try:
                spent = max(spent, SpentEvent.model_validate_json(event.data).tokens)
            except ValidationError:
                log("usage_event_invalid", level="warning")
                continue
            while spent > held.tokens:
                if not await budget.extend(db, held, step):
                    ending = ErrorEvent(
                        code="token_budget_exhausted",
                        message="the tenant's daily LLM token budget ran out during this"
                        " answer; it resets at 00:00 UTC",
                    )
                    yield ended(ending, form)
                    return
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()  # the model stops: nobody will read the rest
        await budget.charge(db, held, spent)
