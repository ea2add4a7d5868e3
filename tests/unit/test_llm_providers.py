"""Model providers over their real wire formats (transport-level fakes: httpx.MockTransport
behind the emulated Http port) and the router's retries, fallback and shared cool-downs."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.kv import EmulatedKV
from kernel.bindings.env import Bindings
from kernel.runtime.errors import ServiceUnavailable, UpstreamError
from llm.providers import Provider, ProviderFailure, configured
from llm.router import COOLDOWN_S, ProviderUnavailable, Router

Handler = Callable[[httpx.Request], httpx.Response]
SYSTEM = "Answer from the sources."
ASK = [{"role": "user", "content": "Which light does chlorophyll absorb?"}]


def anthropic_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert request.url.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert body["system"] == SYSTEM and body["messages"] == ASK and body["max_tokens"] == 64
    return httpx.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": "Red and blue light. [1]"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 21, "output_tokens": 7},
        },
    )


def openai_ok(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    assert request.url.path == "/v1/chat/completions"
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert body["messages"][1:] == ASK
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Red and blue. [1]"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35},
        },
    )


def anthropic_error(status: int, kind: str, retry_after: str | None = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"retry-after": retry_after} if retry_after else {}
        body = {"type": "error", "error": {"type": kind, "message": f"{kind} (fake)"}}
        return httpx.Response(status, json=body, headers=headers)

    return handle


class Counting:
    def __init__(self, *handlers: Handler) -> None:
        self.handlers, self.calls = list(handlers), 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        handler = self.handlers[min(self.calls, len(self.handlers) - 1)]
        self.calls += 1
        return handler(request)


def bindings(routes: dict[str, Handler], kv: EmulatedKV | None = None, **vars: str) -> Bindings:
    def route(request: httpx.Request) -> httpx.Response:
        return routes[request.url.host](request)

    env = SimpleNamespace(**vars)
    return Bindings(
        worker="llm",
        adapter="emulator",
        raw_env=env,
        kv=kv or EmulatedKV(None),
        http=EmulatedHttp(httpx.MockTransport(route)),
    )


ANTHROPIC = Provider("anthropic", "claude-test", "https://anthropic.test", "sk-ant-test")
OPENAI = Provider("openai", "gpt-test", "https://openai.test", "sk-test")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    waits.append(seconds)


waits: list[float] = []


# --- wire formats ------------------------------------------------------------------------
async def test_anthropic_messages_api() -> None:
    done = await ANTHROPIC.complete(bindings({"anthropic.test": anthropic_ok}), SYSTEM, ASK, 64)
    assert (done.text, done.prompt_tokens, done.completion_tokens) == (
        "Red and blue light. [1]",
        21,
        7,
    )


async def test_openai_compatible_and_dedalus() -> None:
    done = await OPENAI.complete(bindings({"openai.test": openai_ok}), SYSTEM, ASK, 64)
    assert (done.text, done.prompt_tokens, done.completion_tokens) == ("Red and blue. [1]", 30, 5)
    dedalus = Provider("dedalus", "openai/gpt-5-mini", "https://dedalus.test", "dsk-test")
    seen: list[httpx.Request] = []

    def dedalus_ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return openai_ok(request)

    await dedalus.complete(bindings({"dedalus.test": dedalus_ok}), SYSTEM, ASK, 64)
    assert seen[0].headers["authorization"] == "Bearer dsk-test"
    assert json.loads(seen[0].content)["model"] == "openai/gpt-5-mini"


@pytest.mark.parametrize(
    ("handler", "kind", "retry_after"),
    [
        (anthropic_error(529, "overloaded_error"), "overloaded", None),
        (anthropic_error(429, "rate_limit_error", "2"), "rate_limited", 2.0),
        (anthropic_error(500, "api_error"), "server", None),
        (anthropic_error(400, "invalid_request_error"), "rejected", None),
        (lambda r: httpx.Response(200, content=b"{not json"), "malformed", None),
        (lambda r: httpx.Response(200, json={"content": "nope"}), "malformed", None),
    ],
)
async def test_provider_errors_are_classified(
    handler: Handler, kind: str, retry_after: float | None
) -> None:
    with pytest.raises(ProviderFailure) as failure:
        await ANTHROPIC.complete(bindings({"anthropic.test": handler}), SYSTEM, ASK, 64)
    assert failure.value.kind == kind and failure.value.retry_after == retry_after
    assert "sk-ant-test" not in str(failure.value)  # keys never reach messages or logs


async def test_timeouts_and_refused_connections() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler, kind in ((slow, "timeout"), (refused, "network")):
        with pytest.raises(ProviderFailure) as failure:
            await OPENAI.complete(bindings({"openai.test": handler}), SYSTEM, ASK, 64)
        assert failure.value.kind == kind and failure.value.retryable


def test_the_chain_comes_from_the_environment() -> None:
    b = bindings(
        {},
        EDGERAG_LLM_PROVIDERS="anthropic, dedalus, openai, workers-ai",
        ANTHROPIC_API_KEY="k",
        OPENAI_BASE_URL="http://127.0.0.1:8081",
        EDGERAG_DEDALUS_MODEL="anthropic/claude-x",
    )
    chain = configured(b)
    assert [(p.name, p.configured) for p in chain] == [
        ("anthropic", True),
        ("dedalus", False),  # no DEDALUS_API_KEY
        ("openai", True),  # a local server needs a base URL, not a key
        ("workers-ai", False),  # no AI binding here
    ]
    assert chain[1].model == "anthropic/claude-x" and chain[2].base_url == "http://127.0.0.1:8081"
    with pytest.raises(ServiceUnavailable, match="unknown provider"):
        configured(bindings({}, EDGERAG_LLM_PROVIDERS="gpt-9000"))


# --- the router --------------------------------------------------------------------------
async def test_retries_honour_retry_after_then_fall_back_and_cool_down() -> None:
    waits.clear()
    overloaded = Counting(anthropic_error(429, "rate_limit_error", "1.5"))
    b = bindings({"anthropic.test": overloaded, "openai.test": openai_ok})
    clock = Clock()
    router = Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, clock=clock)
    routed = await router.complete("t_x", SYSTEM, ASK, 64)
    assert routed.provider.name == "openai" and overloaded.calls == 3  # 1 + 2 retries
    assert waits == [1.5, 1.5]
    assert [(a.provider, a.outcome) for a in routed.tried] == [
        ("anthropic", "rate_limited"),
        ("openai", "ok"),
    ]
    # Another request (another isolate would read the same KV): anthropic is skipped.
    again = await Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, clock=clock).complete(
        "t_x", SYSTEM, ASK, 64
    )
    assert overloaded.calls == 3 and again.tried[0].outcome == "cooling_down"
    clock.now += COOLDOWN_S + 1  # the cool-down is over: anthropic is asked again
    await Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, clock=clock).complete(
        "t_x", SYSTEM, ASK, 64
    )
    assert overloaded.calls == 6


async def test_a_rejected_request_is_not_passed_on() -> None:
    other = Counting(openai_ok)
    b = bindings(
        {"anthropic.test": anthropic_error(400, "invalid_request_error"), "openai.test": other}
    )
    with pytest.raises(UpstreamError, match="anthropic answered 400"):
        await Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep).complete("t_x", SYSTEM, ASK, 64)
    assert other.calls == 0


async def test_nobody_available_is_a_503_with_the_soonest_retry() -> None:
    b = bindings(
        {
            "anthropic.test": anthropic_error(529, "overloaded_error"),
            "openai.test": lambda r: httpx.Response(503, json={"error": {"message": "x"}}),
        }
    )
    clock = Clock()
    with pytest.raises(ProviderUnavailable) as down:
        await Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, clock=clock).complete(
            "t_x", SYSTEM, ASK, 64
        )
    assert down.value.status == 503 and down.value.code == "provider_unavailable"
    assert down.value.headers["retry-after"] == str(int(COOLDOWN_S))
    assert [a["outcome"] for a in down.value.details["tried"]] == ["overloaded", "overloaded"]
    clock.now += 100
    with pytest.raises(ProviderUnavailable) as still:
        await Router(b, [ANTHROPIC, OPENAI], sleep=no_sleep, clock=clock).complete(
            "t_x", SYSTEM, ASK, 64
        )
    assert still.value.headers["retry-after"] == str(int(COOLDOWN_S) - 100)


# --- the Cloudflare adapter of the Http port (the runtime's fetch, faked at the FFI) --------
class _JsHeaders(dict[str, str]):
    pass


class _JsResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self._body = status, _JsHeaders(headers), body

    async def bytes(self) -> bytes:
        return self._body


async def test_cloudflare_http_sends_through_fetch_with_an_abort_signal() -> None:
    from kernel.bindings.cloudflare import CloudflareHttp
    from kernel.bindings.ports import HttpError

    calls: list[tuple[str, dict[str, object]]] = []

    async def fetch(url: str, **kwargs: object) -> _JsResponse:
        calls.append((url, kwargs))
        return _JsResponse(429, {"Retry-After": "3", "Content-Type": "application/json"}, b"{}")

    http = CloudflareHttp(fetcher=fetch, abort_signal=lambda ms: f"signal:{ms}")
    reply = await http.send(
        "POST",
        "https://api.anthropic.com/v1/messages",
        headers={"x": "1"},
        body=b"{}",
        timeout_s=2.5,
    )
    assert (reply.status, reply.headers["retry-after"], reply.body) == (429, "3", b"{}")
    url, kwargs = calls[0]
    assert url == "https://api.anthropic.com/v1/messages"
    assert kwargs["method"] == "POST" and kwargs["signal"] == "signal:2500"
    assert kwargs["redirect"] == "manual" and kwargs["body"] == b"{}"

    async def aborted(url: str, **kwargs: object) -> _JsResponse:
        raise RuntimeError("AbortError: The operation was aborted due to timeout")

    with pytest.raises(HttpError) as failure:
        await CloudflareHttp(fetcher=aborted, abort_signal=str).send(
            "GET", "https://x.test", headers={}, body=None, timeout_s=1
        )
    assert failure.value.kind == "timeout"
