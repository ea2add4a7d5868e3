"""Agentic chat: the model calls the caller's tools, step by step, before the grounded answer.

A turn is a loop of at most `EDGERAG_AGENT_MAX_STEPS` (default 5) model steps (llm `POST
/agent`). Each tool call the model asks for goes through the dispatcher exactly as a client's
call does — as the *caller*, with the session's write setting, audited as model-requested — and
its result (or its error, e.g. a 403 or a 422 naming the field) is fed back. The loop ends when
the model stops calling tools, or at the step limit. Then the answer is written the usual way:
grounded on what the model's searches found (else on a fresh retrieval), every sentence
verified against the stored chunks — the model's own last words are not shown, so nothing it
read in a tool result reaches the reader unverified.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kernel.contracts.api import GeneratedBy, SearchHit
from kernel.contracts.llm import AgentMessage, AgentRequest, AgentResponse, ToolDeclaration
from kernel.contracts.rag import ToolStep
from kernel.runtime.errors import ApiError
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry
from rag.allowance import model_allowance
from rag.answer import as_sources
from rag.live import Failed, Item, Spent
from rag.llm_client import ask_llm
from rag.tools.dispatch import Caller, Toolbox
from rag.usercontext import level_of

DEFAULT_MAX_STEPS = 5
MAX_CALLS_PER_STEP = 4
MAX_RESULT_CHARS = 6000  # of a tool result, as the model reads it
MAX_STORED_RESULT = 4000  # of a tool result, as the message history keeps it


@dataclass(frozen=True)
class ToolCalled:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolReturned:
    step: ToolStep


@dataclass(frozen=True)
class AgentSpent:
    tokens: int  # all the turn's tool-calling steps have spent so far


@dataclass
class AgentDone:
    steps: list[ToolStep] = field(default_factory=list)
    spent: int = 0
    supported: bool = True
    limited: bool = False
    evidence: list[SearchHit] = field(default_factory=list)
    by: GeneratedBy | None = None


AgentItem = ToolCalled | ToolReturned | AgentSpent | AgentDone


def max_steps(raw: str | None) -> int:
    try:
        value = int(raw) if raw else DEFAULT_MAX_STEPS
    except ValueError:
        return DEFAULT_MAX_STEPS
    return min(10, max(1, value))


def _fit(result: dict[str, Any], limit: int) -> tuple[str, dict[str, Any] | None]:
    """The result as JSON for the model (cut at `limit`), and a stored copy within limits."""
    text = json.dumps(result, ensure_ascii=False)
    stored = result if len(text) <= MAX_STORED_RESULT else {"truncated": text[:MAX_STORED_RESULT]}
    return text[:limit], stored


async def run_turn(
    box: Toolbox,
    caller: Caller,
    question: str,
    history: list[dict[str, Any]],
    steps_allowed: int,
) -> AsyncIterator[AgentItem]:
    db = box.db(caller)
    allowed = await model_allowance(db)
    level = await level_of(db, caller.scope.viewer)
    tools = [
        ToolDeclaration(
            name=t.name, description=t.description, parameters=t.args.model_json_schema()
        )
        for t in box.allowed(caller)
    ]
    messages = [
        AgentMessage(role=m["role"], content=str(m["content"])[:8000])
        for m in history
        if m["role"] in ("user", "assistant") and m["content"]
    ]
    messages.append(AgentMessage(role="user", content=question))
    done = AgentDone()
    for _ in range(steps_allowed):
        reply = await _step(box, caller, messages, tools, level, allowed.providers, allowed.models)
        if not reply.supported:
            done.supported = False
            break
        done.spent += reply.usage.total_tokens
        done.by = GeneratedBy(provider=reply.provider, model=reply.model, tried=reply.tried)
        yield AgentSpent(done.spent)
        if not reply.tool_calls:
            break
        calls = reply.tool_calls[:MAX_CALLS_PER_STEP]
        messages.append(AgentMessage(role="assistant", content=reply.text, tool_calls=calls))
        for asked in calls:
            yield ToolCalled(asked.id, asked.name, asked.arguments)
            step = ToolStep(id=asked.id, name=asked.name, arguments=asked.arguments, ok=False)
            try:
                outcome = await box.call(asked.name, asked.arguments, caller)
                sent, stored = _fit(outcome.result, MAX_RESULT_CHARS)
                step.ok, step.result, step.audit_id = True, stored, outcome.audit_id
            except ApiError as exc:
                step.error = {"code": exc.code, "message": str(exc)[:500]}
                sent = json.dumps({"error": step.error})
            done.steps.append(step)
            yield ToolReturned(step)
            messages.append(
                AgentMessage(
                    role="tool",
                    content=sent,
                    tool_call_id=asked.id,
                    name=asked.name,
                    is_error=not step.ok,
                )
            )
        if caller.spent:  # tools that called a model (summaries) spend from the same budget
            done.spent, caller.spent = done.spent + caller.spent, 0
            yield AgentSpent(done.spent)
    else:
        done.limited = True
        log("agent_step_limit", tenant=caller.scope.tenant_id, steps=steps_allowed)
    registry("rag").inc(
        "edgerag_agent_turns_total",
        help="Agentic chat turns by how they ended",
        ended="unsupported" if not done.supported else "step_limit" if done.limited else "answer",
    )
    done.evidence = list(caller.evidence)
    yield done


async def _step(
    box: Toolbox,
    caller: Caller,
    messages: list[AgentMessage],
    tools: list[ToolDeclaration],
    level: str | None,
    providers: list[str] | None,
    models: list[str] | None,
) -> AgentResponse:
    request = AgentRequest.model_validate(
        {
            "messages": messages,
            "tools": tools,
            "level": level,
            "providers": providers,
            "models": models,
        },
        strict=False,
    )
    return await ask_llm(
        box.b, caller.scope.tenant_id, caller.request_id, "/agent", request, AgentResponse
    )


async def streamed(
    turn: AsyncIterator[AgentItem],
    open_answer: Callable[[list[SearchHit] | None], Awaitable[AsyncIterator[Item]]],
) -> AsyncIterator[Item | ToolCalled | ToolReturned]:
    """A streamed agentic turn: tool_call / tool_result items as they happen, then the grounded
    answer's items; `Spent` counts the whole turn (the gateway's budget reads the largest)."""
    spent = 0
    done: AgentDone | None = None
    try:
        async for item in turn:
            if isinstance(item, AgentSpent):
                spent = item.tokens
                yield Spent(spent)
            elif isinstance(item, AgentDone):
                done = item
            else:
                yield item
        assert done is not None
        live = await open_answer(as_sources(done.evidence) if done.evidence else None)
    except ApiError as exc:  # a provider failing during the tool steps ends the turn
        yield Failed(exc.code, str(exc), {"total_tokens": spent})
        return
    try:
        async for answered in live:
            yield Spent(spent + answered.tokens) if isinstance(answered, Spent) else answered
    finally:
        close = getattr(live, "aclose", None)
        if close is not None:
            await close()


async def finished(turn: AsyncIterator[AgentItem]) -> AgentDone:
    """A turn run to its end (non-streamed chat)."""
    done = AgentDone()
    async for item in turn:
        if isinstance(item, AgentDone):
            done = item
    return done
