"""JSON-RPC 2.0 messages as MCP sends them over HTTP: one message per POST (no batches since
2025-06-18), ids that are strings or integers (never null), params that are objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from kernel.contracts.mcp import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorObject,
    ErrorResponse,
)
from kernel.runtime.errors import ApiError
from kernel.runtime.http import validate
from kernel.runtime.jsonbounds import parse_json

RequestId = str | int
MAX_ID_CHARS = 200


class RpcError(Exception):
    """A JSON-RPC error object; `status` is the HTTP status it travels with (200 once the
    message was understood as a request, 400/404 for what the transport refuses)."""

    def __init__(self, code: int, message: str, data: Any = None, status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.data, self.status = code, message, data, status

    def response(self, id: RequestId | None, request_id: str) -> dict[str, Any]:
        data = {**(self.data or {}), "request_id": request_id}
        error = ErrorObject(code=self.code, message=self.message, data=data)
        return ErrorResponse(id=id, error=error).model_dump()


@dataclass(frozen=True)
class Message:
    kind: Literal["request", "notification", "response"]
    method: str = ""
    id: RequestId | None = None
    params: Any = field(default_factory=dict)  # checked by `params()`: an object, or -32602


def _invalid(message: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"Invalid Request: {message}", status=400)


def parse(body: bytes) -> Message:
    try:
        raw = parse_json(body)
    except (ApiError, ValueError) as exc:  # bounded parse: hostile nesting is a parse error too
        text = exc.message if isinstance(exc, ApiError) else str(exc)
        raise RpcError(PARSE_ERROR, f"Parse error: {text[:200]}", status=400) from None
    if isinstance(raw, list):
        raise _invalid("JSON-RPC batches are not part of MCP since 2025-06-18; send one message")
    if not isinstance(raw, dict) or raw.get("jsonrpc") != "2.0":
        raise _invalid('a message is a JSON object with "jsonrpc": "2.0"')
    has_id = "id" in raw
    ident = raw.get("id")
    if has_id and (
        isinstance(ident, bool)
        or not isinstance(ident, str | int)
        or (isinstance(ident, str) and not 0 < len(ident) <= MAX_ID_CHARS)
    ):
        raise _invalid("`id` must be a non-empty string or an integer")
    if "method" not in raw:
        if has_id and ("result" in raw or "error" in raw):
            return Message("response", id=ident)  # a reply to a server request: we send none
        raise _invalid("neither a request, a notification nor a response")
    method = raw["method"]
    if not isinstance(method, str) or not method:
        raise _invalid("`method` must be a non-empty string")
    return Message("request" if has_id else "notification", method, ident, raw.get("params", {}))


def params(model: type[BaseModel], message: Message) -> Any:
    """The message's params as `model`; a mismatch is -32602 naming the field."""
    if not isinstance(message.params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid params: `params` must be an object")
    try:
        return validate(model, message.params)
    except ApiError as exc:
        raise RpcError(INVALID_PARAMS, f"Invalid params: {exc.message}", exc.details) from None


def result(id: RequestId, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "result": value}
