"""LLM Worker routes (called by the rag Worker over a service binding)."""

from __future__ import annotations

from typing import Any

from kernel.bindings.env import Bindings, resolve
from kernel.bindings.health import add_internal_routes
from kernel.contracts.learning import SpeakRequest
from kernel.contracts.llm import (
    AgentRequest,
    AnalyzeRequest,
    GenerateRequest,
    Plan,
    PlanRequest,
    TaskRequest,
    Usage,
)
from kernel.contracts.rag import CACHED_HEADER
from kernel.domain.tenancy import scope_from_request
from kernel.runtime import sse
from kernel.runtime.app import WorkerApp
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.metrics import registry
from kernel.runtime.router import Router
from llm import analyzer, speech
from llm.agent import agent_step
from llm.generation import generate_grounded, stream_grounded
from llm.providers import configured
from llm.router import Router as ProviderRouter
from llm.tasks import run_task


class Llm:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def generate(self, request: Request) -> Response:
        scope = scope_from_request(request)
        ask = request.model(GenerateRequest)
        if ask.stream:
            events = await stream_grounded(self.b, ask, scope.tenant_id)
            return Response(status=200, headers=dict(sse.HEADERS), stream=events)
        generated = await generate_grounded(self.b, ask, scope.tenant_id)
        _count_tokens(scope.tenant_id, generated.model, generated.usage)
        return json_response(generated.model_dump())

    async def agent(self, request: Request) -> Response:
        scope = scope_from_request(request)
        done = await agent_step(self.b, request.model(AgentRequest), scope.tenant_id)
        if done.supported:
            _count_tokens(scope.tenant_id, done.model, done.usage)
        return json_response(done.model_dump())

    async def plan(self, request: Request) -> Response:
        """The provider and model the chain would try first now (configured, allowed by the
        tenant, not cooling down): what cached model output is keyed on."""
        ask = request.model(PlanRequest)
        chain = ProviderRouter(
            self.b, configured(self.b), providers=ask.providers, models=ask.models
        )
        for p in chain.chain:
            if p.configured and chain.allows(p) and await chain.cooling_until(p.name) is None:
                return json_response(Plan(provider=p.name, model=p.model).model_dump())
        return json_response(Plan(provider="none", model="none").model_dump())

    async def tts(self, request: Request) -> Response:
        """Audio for the text (llm.speech): the bytes, their type, and whether R2 had them."""
        scope = scope_from_request(request)
        ask = request.model(SpeakRequest)
        spoken = await speech.synthesize(self.b, scope, ask.text, ask.voice, ask.format)
        headers = {
            "content-type": spoken.content_type,
            "x-edgerag-tts": f"{spoken.provider};{spoken.model};{spoken.voice}",
        }
        if spoken.cached:
            headers[CACHED_HEADER] = "true"
        return Response(status=200, headers=headers, body=spoken.audio)

    async def analyze(self, request: Request) -> Response:
        """A recording's analysis from the tenant's or the deployment's analyzer, checked."""
        scope = scope_from_request(request)
        done = await analyzer.analyze(self.b, request.model(AnalyzeRequest), scope.tenant_id)
        return json_response(done.model_dump())

    async def task(self, request: Request) -> Response:
        scope = scope_from_request(request)
        done = await run_task(self.b, request.model(TaskRequest), scope.tenant_id)
        _count_tokens(scope.tenant_id, done.model, done.usage)
        return json_response(done.model_dump())


def _count_tokens(tenant: str, model: str, usage: Usage) -> None:
    metrics = registry("llm")
    for direction, tokens in (("in", usage.prompt_tokens), ("out", usage.completion_tokens)):
        metrics.inc(
            "edgerag_llm_tokens_total",
            tokens,
            help="LLM tokens by tenant, direction and model",
            tenant=tenant,
            direction=direction,
            model=model,
        )


def build_app(raw_env: Any) -> WorkerApp:
    llm = Llm(bindings := resolve("llm", raw_env, http=True))
    router = Router()
    router.add("POST", "/generate", llm.generate)
    router.add("POST", "/task", llm.task)
    router.add("POST", "/agent", llm.agent)
    router.add("POST", "/plan", llm.plan)
    router.add("POST", "/tts", llm.tts)
    router.add("POST", "/analyze", llm.analyze)

    async def providers() -> dict[str, Any]:
        chain = ProviderRouter(bindings, configured(bindings))
        return {
            "providers": [await chain.describe(p) for p in chain.chain],
            "speech": speech.describe(bindings),
            "analyzer": analyzer.describe(bindings),
        }

    add_internal_routes(router, bindings, providers)
    return WorkerApp("llm", router, bindings.tracer)
