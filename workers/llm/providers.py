"""Model providers, each speaking its documented wire format over the `Http` port.

- `workers-ai`: the AI binding (`messages`, `max_tokens` → `{response, usage}`).
- `anthropic`: Messages API — `POST {base}/v1/messages` with `x-api-key` and
  `anthropic-version: 2023-06-01`; the system prompt is a top-level field; the reply's `content`
  is a list of blocks (`{"type": "text", "text"}`), usage is `input_tokens`/`output_tokens`;
  errors are `{"type": "error", "error": {"type": "overloaded_error", "message"}}` (529 overload,
  429 `rate_limit_error` with `retry-after`).
- `openai`: any OpenAI-compatible `POST {base}/v1/chat/completions` (OpenAI, Cloudflare AI
  Gateway, Ollama, llama.cpp's server, vLLM) with `Authorization: Bearer`; reply
  `choices[0].message.content`, usage `prompt_tokens`/`completion_tokens`; errors
  `{"error": {"message", "type", "code"}}`.
- `dedalus`: Dedalus Labs' API, OpenAI-shaped `/v1/chat/completions`, models named
  `provider/model`.

Structured output (`schema`, see llm/claims.py) is asked each provider's documented way: Anthropic
a forced tool (`tools` + `tool_choice: {"type": "tool"}`; the reply's `tool_use` block carries the
object as `input`), OpenAI-compatible `response_format: {"type": "json_schema", "json_schema":
{name, strict, schema}}` (the object comes as `content` text), Workers AI JSON mode
(`response_format: {"type": "json_schema", "json_schema": schema}`; `response` is the object).
`EDGERAG_<PROVIDER>_STRUCTURED=false` turns it off for a server that rejects the field.

HTTP, not the official SDKs: see docs/decisions.md ("Model providers over HTTP"). Every failure
becomes a `ProviderFailure` whose `kind` the router acts on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from kernel.bindings.env import Bindings
from kernel.bindings.ports import BindingError, HttpError
from kernel.runtime import tracing
from kernel.runtime.errors import ServiceUnavailable
from llm.claims import TOOL_NAME

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MODELS = {
    "workers-ai": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    "anthropic": "claude-sonnet-4-5",
    "dedalus": "openai/gpt-5-mini",
    "openai": "gpt-4o-mini",
}
DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "dedalus": "https://api.dedaluslabs.ai",
    "openai": "https://api.openai.com",
}
# kinds: rate_limited (429) · overloaded (529/503) · server (5xx) · timeout · network ·
# truncated (a stream that ended early) — worth a retry and then the next provider; rejected (4xx: our request) · malformed (an unreadable
# reply) — not retried; rejected is not passed on either, since any provider would refuse it.
RETRYABLE = frozenset({"rate_limited", "overloaded", "server", "timeout", "network", "truncated"})


class ProviderFailure(Exception):
    def __init__(
        self,
        provider: str,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider, self.kind, self.status, self.retry_after = (
            provider,
            kind,
            status,
            retry_after,
        )
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    # What the provider returned for a structured request (Anthropic's tool input, Workers AI's
    # JSON-mode object); OpenAI-compatible servers return it as JSON in `text`.
    structured: Any = None


@dataclass(frozen=True)
class Provider:
    name: str  # workers-ai | anthropic | dedalus | openai
    model: str
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    configured: bool = True
    timeout_s: float = 60.0  # the whole call
    connect_timeout_s: float = 10.0  # until the status line (the provider accepted the call)
    first_token_timeout_s: float = 20.0  # until the first token of a stream
    structured: bool = True  # ask for structured output (EDGERAG_<P>_STRUCTURED=false: never)
    tools: bool = True  # function calling for agentic chat (EDGERAG_<P>_TOOLS=false: never)

    async def complete(
        self,
        b: Bindings,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        """`schema`: ask for a JSON object of that schema (each provider's own way)."""
        if self.name == "workers-ai":
            return await _workers_ai(self, b, system, messages, max_tokens, schema)
        if self.name == "anthropic":
            body = anthropic_body(self, system, messages, max_tokens, schema)
            headers = {"x-api-key": self.api_key, "anthropic-version": ANTHROPIC_VERSION}
            reply = await self._post(b, "/v1/messages", headers, body)
            return _anthropic_reply(self, reply)
        body = openai_body(self, system, messages, max_tokens, schema)
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return _openai_reply(self, await self._post(b, "/v1/chat/completions", headers, body))

    async def _post(
        self, b: Bindings, path: str, headers: dict[str, str], body: dict[str, Any]
    ) -> dict[str, Any]:
        http = b.need(b.http, "HTTP")
        url = self.base_url.rstrip("/") + path
        try:
            reply = await http.send(
                "POST",
                url,
                headers={"content-type": "application/json", **headers},
                body=json.dumps(body).encode(),
                timeout_s=self.timeout_s,
            )
        except HttpError as exc:
            raise ProviderFailure(self.name, exc.kind, str(exc)) from exc
        if reply.status >= 400:
            raise http_failure(self.name, reply.status, reply.headers, reply.body)
        try:
            data = json.loads(reply.body)
        except ValueError as exc:
            raise ProviderFailure(self.name, "malformed", "the reply is not JSON") from exc
        if not isinstance(data, dict):
            raise ProviderFailure(self.name, "malformed", "the reply is not a JSON object")
        if isinstance(data.get("model"), str):  # the model that answered, on this call's span
            tracing.current().set("gen_ai.response.model", data["model"][:200])
        return data


def anthropic_body(
    p: Provider,
    system: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    schema: dict[str, Any] | None,
) -> dict[str, Any]:
    """A Messages API request; with `schema`, a tool of that input schema the model must call
    (`tool_choice: {"type": "tool"}`), so its reply is the tool's input."""
    body: dict[str, Any] = {
        "model": p.model,
        "max_tokens": max_tokens,
        "system": system,
        "messages": messages,
        "temperature": 0,
    }
    if schema is not None:
        name, description, bare = named(schema)
        body["tools"] = [{"name": name, "description": description, "input_schema": bare}]
        body["tool_choice"] = {"type": "tool", "name": name}
    return body


def named(schema: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A structured-output schema's name (its `title`; the claims schema has none), its
    description, and the schema without those two keys, as the providers take it."""
    bare = {k: v for k, v in schema.items() if k not in ("title", "description")}
    name = str(schema.get("title") or TOOL_NAME)
    description = str(
        schema.get("description")
        or "Answer with claims from the numbered sources, each with a quote."
    )
    return name, description, bare


def openai_body(
    p: Provider,
    system: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    schema: dict[str, Any] | None,
) -> dict[str, Any]:
    """A chat-completions request; with `schema`, `response_format: json_schema` (strict)."""
    body: dict[str, Any] = {
        "model": p.model,
        "max_tokens": max_tokens,
        "messages": [{"role": "system", "content": system}, *messages],
        "temperature": 0,
    }
    if schema is not None:
        name, _, bare = named(schema)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": "grounded_answer" if name == TOOL_NAME else name,
                "strict": True,
                "schema": bare,
            },
        }
    return body


def http_failure(
    provider: str, status: int, headers: dict[str, str], body: bytes
) -> ProviderFailure:
    kind = (
        "rate_limited"
        if status == 429
        else "overloaded"
        if status in (503, 529)
        else "server"
        if status >= 500
        else "rejected"
    )
    detail = ""
    try:
        error = json.loads(body).get("error")
        if isinstance(error, dict):  # both wire formats nest {type, message} under "error"
            detail = f": {error.get('type') or error.get('code') or ''} {error.get('message', '')}"
    except (ValueError, AttributeError):
        pass
    retry_after = None
    raw = headers.get("retry-after", "")
    try:
        retry_after = max(0.0, float(raw)) if raw else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        retry_after = None
    return ProviderFailure(
        provider,
        kind,
        f"{provider} answered {status}{detail[:300]}".rstrip(),
        status=status,
        retry_after=retry_after,
    )


def _anthropic_reply(p: Provider, data: dict[str, Any]) -> Completion:
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise ProviderFailure(p.name, "malformed", "the reply has no content blocks")
    text = "".join(
        str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    )
    tool = next(
        (
            b.get("input")
            for b in blocks
            # The only tool offered is the forced one, whatever its name.
            if isinstance(b, dict) and b.get("type") == "tool_use"
        ),
        None,
    )
    usage = data.get("usage") or {}
    return Completion(
        text, int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0), tool
    )


def _openai_reply(p: Provider, data: dict[str, Any]) -> Completion:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ProviderFailure(p.name, "malformed", "the reply has no choices[0].message") from exc
    usage = data.get("usage") or {}
    return Completion(
        str(content or ""),
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )


async def _workers_ai(
    p: Provider,
    b: Bindings,
    system: str,
    messages: list[dict[str, str]],
    max_tokens: int,
    schema: dict[str, Any] | None = None,
) -> Completion:
    ai = b.need(b.ai, "AI")
    inputs: dict[str, Any] = {
        "messages": [{"role": "system", "content": system}, *messages],
        "max_tokens": max_tokens,
    }
    if schema is not None:  # JSON mode: `response` is then the object itself
        inputs["response_format"] = {"type": "json_schema", "json_schema": schema}
    try:
        result = await ai.run(p.model, inputs)
    except BindingError as exc:
        raise ProviderFailure(p.name, "server", f"{p.model} failed: {exc}") from exc
    response = result.get("response")
    usage = result.get("usage") or {}
    tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    if isinstance(response, dict) and schema is not None:
        return Completion("", *tokens, structured=response)
    if not isinstance(response, str):
        raise ProviderFailure(p.name, "malformed", f"{p.model} returned no text")
    return Completion(response, *tokens)


def configured(b: Bindings) -> list[Provider]:
    """The chain of EDGERAG_LLM_PROVIDERS, in order; unconfigured ones are kept (and skipped)
    so /health can show them."""
    names = [n.strip() for n in (b.var("EDGERAG_LLM_PROVIDERS") or "workers-ai").split(",")]
    chain = []
    for name in dict.fromkeys(n for n in names if n):
        if name not in DEFAULT_MODELS:
            raise ServiceUnavailable(
                f"EDGERAG_LLM_PROVIDERS names an unknown provider {name!r}; known:"
                f" {', '.join(DEFAULT_MODELS)}"
            )
        prefix = name.upper().replace("-", "_")
        model = b.var(f"EDGERAG_{prefix}_MODEL") or DEFAULT_MODELS[name]
        timed = Provider(
            name,
            model,
            structured=_flag(b, f"EDGERAG_{prefix}_STRUCTURED", default=True),
            tools=_flag(b, f"EDGERAG_{prefix}_TOOLS", default=True),
            timeout_s=_seconds(b, f"EDGERAG_{prefix}_TIMEOUT_S", 60),
            connect_timeout_s=_seconds(b, f"EDGERAG_{prefix}_CONNECT_TIMEOUT_S", 10),
            first_token_timeout_s=_seconds(b, f"EDGERAG_{prefix}_FIRST_TOKEN_TIMEOUT_S", 20),
        )
        if name == "workers-ai":
            chain.append(replace(timed, configured=b.ai is not None))
            continue
        key = b.var(f"{prefix}_API_KEY") or ""
        base = b.var(f"{prefix}_BASE_URL") or DEFAULT_BASE_URLS[name]
        # OpenAI-compatible local servers (llama.cpp, Ollama) need a base URL, not a key.
        ready = bool(key) or (name == "openai" and bool(b.var("OPENAI_BASE_URL")))
        chain.append(
            replace(timed, base_url=base, api_key=key, configured=ready and b.http is not None)
        )
    return chain


def _flag(b: Bindings, name: str, *, default: bool) -> bool:
    raw = (b.var(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ServiceUnavailable(f"{name} must be true or false, got {raw!r}")


def _seconds(b: Bindings, name: str, default: float) -> float:
    raw = b.var(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ServiceUnavailable(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 600:
        raise ServiceUnavailable(f"{name} must be between 0 and 600 seconds, got {raw!r}")
    return value
