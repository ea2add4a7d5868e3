"""The provider router: retries, fallback along the chain, cool-downs shared across isolates.

For each configured provider of the chain that is not cooling down: up to `RETRIES` retries with
jittered exponential backoff (a `Retry-After` the provider sent is honoured, capped at
`MAX_WAIT_S`); a provider that still fails cools down for `COOLDOWN_S` (state in KV, so every
isolate skips it) and the next one is tried. A request the provider rejected (4xx other than
429) is not retried and not passed on — any provider would refuse it — but answered as a clear
502. When no provider could answer: 503 `provider_unavailable`, `Retry-After` = the soonest
cool-down end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kernel.bindings.env import Bindings
from kernel.bindings.ports import BindingError
from kernel.runtime import tracing
from kernel.runtime.errors import ApiError, UpstreamError
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry
from llm import telemetry
from llm.providers import Completion, Provider, ProviderFailure
from llm.streams import Delta, Piece, Tokens, open_stream

RETRIES = 2
BASE_BACKOFF_S = 0.25
MAX_WAIT_S = 5.0  # longer Retry-After: cool down and move on rather than hold the request
COOLDOWN_S = 300.0
COOLDOWN_KEY = "sys/llm/cooldown/{provider}"  # operational state, no tenant data


class ProviderUnavailable(ApiError):
    status = 503
    code = "provider_unavailable"


class NoAllowedProvider(ApiError):
    """The tenant's settings allow none of the providers the operator set up: waiting will not
    help, changing `llm_providers` / `llm_models` (or the deployment) will."""

    status = 409
    code = "no_allowed_provider"


@dataclass
class Attempt:
    provider: str
    model: str
    outcome: str  # ok | skipped | not_allowed (by the tenant) | cooling_down | <failure kind>
    detail: str = ""

    def public(self) -> dict[str, str]:
        return {"provider": self.provider, "model": self.model, "outcome": self.outcome}


@dataclass
class Routed:
    completion: Completion
    provider: Provider
    tried: list[Attempt] = field(default_factory=list)
    structured: bool = False  # the provider was asked for the schema


@dataclass
class RoutedStream:
    provider: Provider
    ttft_ms: float
    pieces: AsyncIterator[Piece]  # the text as it arrives; closing it stops the provider
    structured: bool = False  # the pieces are the JSON text of the schema's object


def asks_schema(provider: Provider, schema: dict[str, Any] | None, *, stream: bool) -> bool:
    """Whether this provider is sent the schema: it must do structured output (the operator
    may switch it off per provider), and Workers AI cannot while streaming."""
    if schema is None or not provider.structured:
        return False
    return not (stream and provider.name == "workers-ai")


Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class Router:
    def __init__(
        self,
        b: Bindings,
        chain: list[Provider],
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        providers: Collection[str] | None = None,
        models: Collection[str] | None = None,
    ) -> None:
        """`providers` / `models`: what the tenant allows (None: anything the operator set up);
        they narrow the chain, never extend it."""
        self.b, self.chain, self.sleep, self.clock = b, chain, sleep, clock
        self.providers = None if providers is None else frozenset(providers)
        self.models = None if models is None else frozenset(models)

    def allows(self, provider: Provider) -> bool:
        return (self.providers is None or provider.name in self.providers) and (
            self.models is None or provider.model in self.models
        )

    async def cooling_until(self, provider: str) -> float | None:
        state = await self._state(provider)  # a KV outage reads as "not cooling": answers go on
        until = float(state.get("until", 0)) if state else 0.0
        return until if until > self.clock() else None

    async def describe(self, provider: Provider) -> dict[str, Any]:
        """The provider as /health shows it."""
        entry: dict[str, Any] = {
            "name": provider.name,
            "model": provider.model,
            "configured": provider.configured,
            "state": "available" if provider.configured else "not_configured",
        }
        state = await self._state(provider.name)
        if state and float(state.get("until", 0)) > self.clock():
            entry.update(
                state="cooling_down",
                cooling_down_until=float(state["until"]),
                last_error=state["kind"],
            )
        return entry

    async def _state(self, provider: str) -> dict[str, Any] | None:
        if self.b.kv is None:
            return None
        try:
            raw = await self.b.kv.get(COOLDOWN_KEY.format(provider=provider))
        except BindingError:
            return None
        return None if raw is None else dict(json.loads(raw))

    async def cool_down(self, failure: ProviderFailure) -> None:
        until = self.clock() + COOLDOWN_S
        if self.b.kv is not None:
            state = {"until": until, "kind": failure.kind, "status": failure.status}
            with contextlib.suppress(BindingError):
                await self.b.kv.put(
                    COOLDOWN_KEY.format(provider=failure.provider),
                    json.dumps(state),
                    ttl_seconds=int(COOLDOWN_S) + 60,
                )
        log("llm_provider_cooling_down", provider=failure.provider, kind=failure.kind)

    async def complete(
        self,
        tenant: str,
        system: str | Callable[[bool], str],
        messages: list[dict[str, str]],
        max_tokens: int,
        schema: dict[str, Any] | None = None,
    ) -> Routed:
        """`system` may depend on whether the provider is sent `schema` (a callable of it)."""

        async def call(provider: Provider) -> Completion:
            started = time.perf_counter()
            structured = asks_schema(provider, schema, stream=False)
            prompt = _system(system, structured)
            telemetry.describe_request(
                tracing.current(),
                max_tokens=max_tokens,
                structured=structured,
                stream=False,
                system=prompt,
                messages=messages,
            )
            completion = await provider.complete(
                self.b, prompt, messages, max_tokens, schema if structured else None
            )
            _latency(provider, started)
            return completion

        completion, provider, tried = await self._route(tenant, call)
        return Routed(completion, provider, tried, asks_schema(provider, schema, stream=False))

    async def stream(
        self,
        tenant: str,
        system: str | Callable[[bool], str],
        messages: list[dict[str, str]],
        max_tokens: int,
        schema: dict[str, Any] | None = None,
    ) -> tuple[RoutedStream, list[Attempt]]:
        """A token stream from the first provider that starts one, and the chain as tried.
        Fallback and retries happen only until its first token: after that the text may already
        be on its way to a reader, so a failure ends the stream (`ProviderFailure` from the
        iterator) instead."""

        async def call(provider: Provider) -> RoutedStream:
            structured = asks_schema(provider, schema, stream=True)
            prompt = _system(system, structured)
            telemetry.describe_request(
                tracing.current(),
                max_tokens=max_tokens,
                structured=structured,
                stream=True,
                system=prompt,
                messages=messages,
            )
            routed = await self._open(
                provider, tenant, prompt, messages, max_tokens, schema if structured else None
            )
            routed.structured = structured
            return routed

        routed, _, tried = await self._route(tenant, call)
        return routed, tried

    async def route(
        self, tenant: str, call: Callable[[Provider], Awaitable[T]]
    ) -> tuple[T, Provider, list[Attempt]]:
        """`call` on the first provider that answers: retries, fallback and cool-downs as for
        completions (e.g. one step of a tool-calling conversation, llm.agent)."""
        return await self._route(tenant, call)

    async def _route(
        self, tenant: str, call: Callable[[Provider], Awaitable[T]]
    ) -> tuple[T, Provider, list[Attempt]]:
        tried: list[Attempt] = []
        soonest: float | None = None
        for provider in self.chain:
            if not provider.configured:
                tried.append(Attempt(provider.name, provider.model, "skipped", "not configured"))
                continue
            if not self.allows(provider):
                tried.append(Attempt(provider.name, provider.model, "not_allowed"))
                continue
            until = await self.cooling_until(provider.name)
            if until is not None:
                tried.append(Attempt(provider.name, provider.model, "cooling_down"))
                soonest = until if soonest is None else min(soonest, until)
                continue
            if tried:
                _metric("edgerag_llm_fallbacks_total", provider, tenant)
            try:
                result = await self._with_retries(provider, tenant, call)
            except ProviderFailure as failure:
                tried.append(Attempt(provider.name, provider.model, failure.kind, str(failure)))
                if failure.kind == "rejected":
                    raise UpstreamError(
                        f"{failure} — the request was not passed to another provider"
                    ) from failure
                await self.cool_down(failure)
                end = self.clock() + COOLDOWN_S
                soonest = end if soonest is None else min(soonest, end)
                continue
            tried.append(Attempt(provider.name, provider.model, "ok"))
            return result, provider, tried
        summary = ", ".join(f"{a.provider}: {a.outcome}" for a in tried) or "no provider configured"
        if any(a.outcome == "not_allowed" for a in tried) and all(
            a.outcome in ("not_allowed", "skipped") for a in tried
        ):
            raise NoAllowedProvider(
                f"this tenant's llm_providers / llm_models settings allow none of the configured"
                f" model providers ({summary})",
                details={"tried": [a.public() for a in tried]},
            )
        wait = max(1, int((soonest or self.clock() + COOLDOWN_S) - self.clock()))
        raise ProviderUnavailable(
            f"no model provider could answer ({summary}); retry in {wait} s",
            headers={"retry-after": str(wait)},
            details={"tried": [a.public() for a in tried]},
        )

    async def _with_retries(
        self, provider: Provider, tenant: str, call: Callable[[Provider], Awaitable[T]]
    ) -> T:
        # One GenAI span per provider tried, covering its retries (llm.telemetry).
        attributes = telemetry.call_attributes(provider)
        with tracing.span(f"chat {provider.model}", tracing.CLIENT, attributes) as span:
            for attempt in range(RETRIES + 1):
                span.set("edgerag.llm.attempts", attempt + 1)
                try:
                    result = await call(provider)
                except ProviderFailure as failure:
                    _metric("edgerag_llm_errors_total", provider, tenant, kind=failure.kind)
                    wait = failure.retry_after
                    if not failure.retryable or attempt == RETRIES or (wait or 0) > MAX_WAIT_S:
                        span.fail(failure.kind)
                        raise
                    backoff = BASE_BACKOFF_S * 2**attempt
                    _metric("edgerag_llm_retries_total", provider, tenant)
                    await self.sleep(wait if wait is not None else random.uniform(0, backoff))
                    continue
                _metric("edgerag_llm_calls_total", provider, tenant)
                telemetry.record_result(span, provider, result)
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _open(
        self,
        provider: Provider,
        tenant: str,
        system: str,
        messages: list[dict[str, str]],
        max_tokens: int,
        schema: dict[str, Any] | None = None,
    ) -> RoutedStream:
        """Open the provider's stream and wait for its first token, within the connect and
        first-token timeouts; the pieces read so far are kept for the reader."""
        started = time.perf_counter()
        try:
            pieces = await asyncio.wait_for(
                open_stream(provider, self.b, system, messages, max_tokens, schema),
                provider.connect_timeout_s,
            )
        except TimeoutError:
            raise ProviderFailure(
                provider.name,
                "timeout",
                f"{provider.name}: no reply within {provider.connect_timeout_s:g} s",
            ) from None
        head: list[Piece] = []
        try:
            while not any(isinstance(p, Delta) and p.text.strip() for p in head):
                left = provider.first_token_timeout_s - (time.perf_counter() - started)
                try:
                    head.append(await asyncio.wait_for(anext(pieces), max(left, 0.001)))
                except StopAsyncIteration:
                    break  # the provider finished without text: an empty answer
        except TimeoutError:
            await _close(pieces)
            raise ProviderFailure(
                provider.name,
                "timeout",
                f"{provider.name}: no token within {provider.first_token_timeout_s:g} s",
            ) from None
        except BaseException:
            await _close(pieces)
            raise
        ttft = (time.perf_counter() - started) * 1000
        registry("llm").observe(
            "edgerag_llm_ttft_ms",
            ttft,
            help="Time to the first token of a provider stream, in milliseconds",
            provider=provider.name,
            model=provider.model,
        )
        # The provider's span goes on with the stream: _rest ends it when the stream does.
        span = tracing.current()
        span.set("gen_ai.response.time_to_first_chunk", ttft / 1000)
        rest = self._rest(provider, tenant, head, pieces, started, span.hand_over())
        return RoutedStream(provider, ttft, rest)

    async def _rest(
        self,
        provider: Provider,
        tenant: str,
        head: list[Piece],
        pieces: AsyncIterator[Piece],
        started: float,
        span: tracing.Span,
    ) -> AsyncIterator[Piece]:
        try:
            for piece in head:
                _usage(span, piece)
                yield piece
            while True:
                left = provider.timeout_s - (time.perf_counter() - started)
                try:
                    piece = await asyncio.wait_for(anext(pieces), max(left, 0.001))
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise ProviderFailure(
                        provider.name,
                        "timeout",
                        f"{provider.name}: the stream took over {provider.timeout_s:g} s",
                    ) from None
                _usage(span, piece)
                yield piece
            _latency(provider, started)
        except ProviderFailure as failure:
            span.fail(failure.kind)
            _metric("edgerag_llm_errors_total", provider, tenant, kind=failure.kind)
            if failure.retryable:
                await self.cool_down(failure)
            raise
        finally:
            span.end()
            await _close(pieces)  # also when our reader went away: the provider stops


def _usage(span: tracing.Span, piece: Piece) -> None:
    if isinstance(piece, Tokens):
        telemetry.record_usage(span, piece.prompt, piece.completion)


def _system(system: str | Callable[[bool], str], structured: bool) -> str:
    return system if isinstance(system, str) else system(structured)


async def _close(pieces: AsyncIterator[Piece]) -> None:
    close = getattr(pieces, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


def _latency(provider: Provider, started: float) -> None:
    registry("llm").observe(
        "edgerag_llm_latency_ms",
        (time.perf_counter() - started) * 1000,
        help="Provider call latency in milliseconds",
        provider=provider.name,
        model=provider.model,
    )


def _metric(name: str, provider: Provider, tenant: str, **labels: Any) -> None:
    helps = {
        "edgerag_llm_calls_total": "Successful provider calls",
        "edgerag_llm_errors_total": "Failed provider calls, by kind",
        "edgerag_llm_retries_total": "Provider calls retried",
        "edgerag_llm_fallbacks_total": "Requests passed on to a later provider of the chain",
    }
    registry("llm").inc(
        name,
        help=helps[name],
        provider=provider.name,
        model=provider.model,
        tenant=tenant,
        **labels,
    )
