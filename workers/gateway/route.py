"""One row of the gateway's route table: everything the pipeline, the 405/OPTIONS answers and
the OpenAPI file need to know about a public route, in one place."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from kernel.runtime.http import Request, Response

if TYPE_CHECKING:
    from gateway.context import Gateway

# none: anyone (the handler may count its own windows, e.g. login per IP and email).
# principal: an API key or access token of a tenant. operator: the operator token.
# operator_or_principal: the operator, or a principal held to `roles`.
# metrics: the operator token, or the scraper's EDGERAG_METRICS_TOKEN.
Auth = Literal["none", "principal", "operator", "operator_or_principal", "metrics"]
Local = Callable[["Gateway", Request], Awaitable[Response]]
After = Callable[["Gateway", Request, Response], Awaitable[None]]
UPLOAD = -1  # body limit: the tenant upload limit (EDGERAG_MAX_UPLOAD_BYTES) plus form framing
# The wire format of a route's event stream, so the gateway ends one it cuts short (the token
# budget ran out) in words its client reads (gateway/metering.py): edgerag's `event: error`,
# OpenAI's `data: {"error": …}`, or the AI SDK's `error` chunk and `[DONE]`.
StreamFormat = Literal["edgerag", "openai", "ai-sdk"]


@dataclass(frozen=True)
class Cost:
    """What one call of a route counts against: its rate-limit class and the token budget."""

    rate: str | None
    spends_tokens: bool


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    summary: str
    # Where it goes: a Worker's binding name ("RAG", "INGEST"), forwarded as bytes to the same
    # path without `/v1` — or a handler the gateway runs itself.
    to: str | Local
    auth: Auth = "principal"
    roles: frozenset[str] | None = None  # None: every role
    what: str = ""  # names the action in a 403: "{what} needs one of the roles: …"
    # Rate-limit class counted per principal (gateway/ratelimit.py); None: not counted here
    # (a handler may count its own windows with this class, e.g. login per IP and email).
    rate: str | None = "api"
    body_limit: int = 1024 * 1024  # bytes; UPLOAD for document uploads
    spends_tokens: bool = False  # refused when the tenant's daily budget is spent; charged after
    after: After | None = None  # runs on the Worker's 200, e.g. purging caches after a purge
    # The published contract (schema/openapi.json).
    request_model: type[BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    status: int = 200
    paged: bool = False  # ?limit and ?cursor keyset pages
    multipart: bool = False  # also accepts multipart/form-data (a file and document options)
    # A reply the Worker served from its cache (CACHED_HEADER), or a 4xx refusal, gives its
    # rate-limit hit back.
    refund_cached: bool = False
    # When the cost depends on the path (`POST /v1/tools/{name}`: each tool's own class).
    cost_of: Callable[[Mapping[str, str]], Cost] | None = None
    stream_format: StreamFormat = "edgerag"  # how the gateway ends its stream (see above)

    # When it depends on the body (`POST /mcp`: a JSON-RPC `tools/call` names its tool).
    cost_of_body: Callable[[bytes], Cost] | None = None

    def cost(self, params: Mapping[str, str], body: bytes = b"") -> Cost:
        if self.cost_of_body is not None:
            return self.cost_of_body(body)
        if self.cost_of is not None:
            return self.cost_of(params)
        return Cost(self.rate, self.spends_tokens)

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{([a-z_]+)\}", self.pattern)

    @property
    def forwards_to(self) -> str | None:
        return self.to if isinstance(self.to, str) else None
