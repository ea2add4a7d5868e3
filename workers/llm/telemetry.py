"""The llm Worker's model calls as OpenTelemetry GenAI client spans (semantic conventions for
generative AI: `gen_ai.*`): one span per provider of the chain that was tried, covering its
retries, named `chat {model}`.

Prompts (system instructions, input messages) are recorded only for a tenant that opted in
(kernel.runtime.tracing.content_allowed); replies never are.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from kernel.bindings.inference import WORKERS_AI
from kernel.contracts.llm import Usage
from kernel.runtime import tracing
from llm.providers import Completion, Provider

# gen_ai.provider.name: the registry's values where one exists (anthropic, openai — also for
# any OpenAI-compatible server, whose server.address then tells them apart), custom otherwise.
PROVIDER_NAMES = {"workers-ai": WORKERS_AI, "anthropic": "anthropic", "openai": "openai"}


def call_attributes(provider: Provider) -> dict[str, tracing.Attr | None]:
    """What the span starts with (the conventions want these at creation, for sampling)."""
    attributes: dict[str, tracing.Attr | None] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider.name, provider.name),
        "gen_ai.request.model": provider.model,
    }
    if provider.base_url:
        url = urlsplit(provider.base_url)
        attributes["server.address"] = url.hostname
        attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    return attributes


def describe_request(
    span: tracing.Span,
    *,
    max_tokens: int,
    structured: bool,
    stream: bool,
    system: str,
    messages: list[dict[str, Any]],
) -> None:
    span.update(
        {
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.stream": stream,
            "gen_ai.output.type": "json" if structured else "text",
        }
    )
    if tracing.content_allowed():
        span.set("gen_ai.system_instructions", json.dumps([{"type": "text", "content": system}]))
        span.set("gen_ai.input.messages", json.dumps([_message(m) for m in messages]))


def record_result(span: tracing.Span, provider: Provider, result: object) -> None:
    """Usage from a completion or an agent step (a stream records its own as it ends)."""
    if isinstance(result, Completion):
        record_usage(span, result.prompt_tokens, result.completion_tokens)
    usage = getattr(result, "usage", None)
    if isinstance(usage, Usage):
        record_usage(span, usage.prompt_tokens, usage.completion_tokens)
    if provider.name == "workers-ai":  # the binding runs exactly the model named
        span.set("gen_ai.response.model", provider.model)


def record_usage(span: tracing.Span, input_tokens: int, output_tokens: int) -> None:
    span.update(
        {"gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}
    )


def _message(message: dict[str, Any]) -> dict[str, Any]:
    # The conventions' input-message shape: a role and its parts.
    return {
        "role": message.get("role"),
        "parts": [{"type": "text", "content": message.get("content")}],
    }
