"""The rag Worker's calls to the llm Worker: one JSON request, its reply held to its contract.

The llm Worker's errors (503 provider_unavailable, 502 model_output_invalid, 422 …) pass on in
the error shape; a reply that breaks its model is a 502 — never a 500, never trusted.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from kernel.bindings.env import Bindings
from kernel.bindings.services import call, upstream_error
from kernel.runtime.errors import UpstreamError

Reply = TypeVar("Reply", bound=BaseModel)


async def ask_llm(
    b: Bindings,
    tenant_id: str,
    request_id: str,
    path: str,
    request: BaseModel,
    reply_model: type[Reply],
) -> Reply:
    reply = await call(
        b.service("LLM"),
        "POST",
        path,
        request_id=request_id,
        tenant_id=tenant_id,
        payload=request.model_dump(exclude_none=True),
    )
    if reply.status != 200:
        raise upstream_error(reply, "llm Worker")
    try:
        return reply_model.model_validate_json(reply.body)
    except ValidationError as exc:
        raise UpstreamError(
            f"llm Worker reply breaks its contract: {exc.errors()[0]['msg']}"
        ) from exc
