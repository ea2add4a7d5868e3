"""Shared by the internal-route contract tests: a Worker reached over its emulated service
binding (the bytes production carries), and a check that a reply is exactly its model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from kernel.bindings.services import PRINCIPAL_HEADER, ROLE_HEADER, TENANT_HEADER

M = TypeVar("M", bound=BaseModel)


def assert_is(model: type[M], body: Any) -> M:
    """`body` validates as `model` and has no field the model does not name: a field renamed
    or added on one side only fails here, not in a client."""
    parsed = model.model_validate(body)
    unknown = set(body) - set(model.model_fields)
    assert not unknown, f"{model.__name__} does not declare {sorted(unknown)}"
    return parsed


class WorkerClient:
    """Calls one Worker as the gateway does: tenant and identity headers, JSON bodies."""

    def __init__(self, service: Any, tenant_id: str, principal: tuple[str, str]) -> None:
        self.service, self.tenant_id, self.principal = service, tenant_id, principal

    async def call(
        self,
        method: str,
        path: str,
        body: BaseModel | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        sent = {
            "x-request-id": "req_contract",
            TENANT_HEADER: self.tenant_id,
            PRINCIPAL_HEADER: self.principal[0],
            ROLE_HEADER: self.principal[1],
            **(headers or {}),
        }
        data = None
        if body is not None:
            payload = body.model_dump(exclude_none=True) if isinstance(body, BaseModel) else body
            data = json.dumps(payload).encode()
            sent["content-type"] = "application/json"
        response = await self.service.fetch(method, path, headers=sent, body=data)
        parsed = json.loads(response.body) if response.body else None
        return response.status, parsed, dict(response.headers)
