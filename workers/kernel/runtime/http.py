"""Runtime-neutral HTTP values: what handlers receive and return.

`kernel.runtime.platform` converts the platform's Request/Response (the `workers` SDK on Cloudflare,
its CPython shim locally) to and from these, so handlers never touch the FFI.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ValidationError

from kernel.runtime.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from kernel.runtime.jsonbounds import parse_json

DEFAULT_MAX_JSON_BYTES = 1 * 1024 * 1024

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # filled by the router
    request_id: str = ""
    # ctx.waitUntil of the invocation: work that continues after the response is sent.
    wait_until: Callable[[Awaitable[Any]], None] | None = None
    # What a Worker's own pipeline learns about this request (the gateway: who the caller is,
    # which route row matched, the rate-limit headers) — carried on the request, never in an
    # app-level table keyed by it.
    context: Any = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.path = self.path or parts.path or "/"
        if not self.query and parts.query:
            self.query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self, *, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> Any:
        if len(self.body) > max_bytes:
            raise PayloadTooLarge(
                f"request body is {len(self.body)} bytes; the limit is {max_bytes}"
            )
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if (
            content_type
            and content_type != "application/json"
            and not content_type.endswith("+json")
        ):
            raise UnsupportedMediaType(f"expected application/json, got {content_type!r}")
        if not self.body:
            raise BadRequest("request body is empty; expected a JSON object")
        # Bounded: hostile nesting or number size is a 400 `invalid_json`, never a 500.
        return parse_json(self.body)

    def model(self, model: type[Model], *, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> Model:
        """Parse and validate the JSON body; a failure names the offending field."""
        return validate(model, self.json(max_bytes=max_bytes))

    def optional_model(self, model: type[Model]) -> Model:
        """As `model`, but an empty body is the model's defaults (`POST …/confirm` with none)."""
        return self.model(model) if self.body.strip() else model()

    def id_param(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        """The path parameter `name`; one not shaped like `what`'s ids names nothing: 404."""
        value = self.params[name]
        if not pattern.match(value):
            raise NotFound(f"{what} {value[:80]} not found")
        return value


def validate(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": _message(e["msg"])}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = fields[0]
        raise ValidationFailed(
            f"{first['field']}: {first['message']}", details={"fields": fields}
        ) from exc


def _message(msg: str) -> str:
    # pydantic prefixes our validators' ValueErrors with "Value error, "; the field says enough.
    return msg.removeprefix("Value error, ")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (server-sent events); when set, `body` is ignored. Closing the iterator
    # early (client gone) raises GeneratorExit inside the producer so it can record that.
    stream: AsyncIterator[bytes] | None = None

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    merged = {"content-type": "application/json; charset=utf-8", **(headers or {})}
    return Response(status=status, body=body, headers=merged)


def text_response(text: str, status: int = 200, content_type: str = "text/plain") -> Response:
    return Response(
        status=status,
        body=text.encode("utf-8"),
        headers={"content-type": f"{content_type}; charset=utf-8"},
    )
