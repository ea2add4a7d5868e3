"""Chat sessions: memory, follow-up rewriting, and answers streamed as server-sent events.

Streaming never shows unverified text: the model's tokens arrive as it writes them (rag.live)
and each sentence is released as `token` events once its citations are verified, followed by
`citation` events for the sources it adds; then `done` (usage, confidence) — or `error`. The assistant message is stored
as `streaming` when the stream starts and as `complete` at the end; if the client goes away
first, what it was sent is stored as `partial`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from kernel.bindings.ports import Statement
from kernel.contracts.api import AnswerRequest, ChatMessageRequest
from kernel.contracts.rag import (
    STREAM_EVENTS,
    DoneEvent,
    ErrorEvent,
    SpentEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from kernel.domain.tenancy import TenantDB
from kernel.runtime.ids import new_id
from kernel.runtime.logs import log
from rag.agent import ToolCalled, ToolReturned
from rag.live import Failed, Item, Sentence, Spent

HISTORY_TURNS = 6
_ANAPHORA = re.compile(
    r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her|there|one)\b", re.I
)
_WORD = re.compile(r"\w+")


def rewrite_follow_up(question: str, history: list[dict[str, Any]]) -> str:
    """Make a follow-up self-contained for retrieval by carrying the previous question's terms.

    A heuristic, deterministic rewrite (documented as such): if the question leans on context
    (pronouns, or fewer than four words) the last user question is prepended. The original
    question still goes to the model, with the history.
    """
    previous = next((m["content"] for m in reversed(history) if m["role"] == "user"), None)
    if previous is None:
        return question
    if _ANAPHORA.search(question) or len(_WORD.findall(question)) < 4:
        return f"{previous} {question}"
    return question


def sse(event: str, data: BaseModel) -> bytes:
    """One server-sent event; `data` is the event's contract model (kernel.contracts.rag)."""
    if not isinstance(data, STREAM_EVENTS[event]):
        raise TypeError(f"a {event!r} event carries {STREAM_EVENTS[event].__name__}")
    payload = json.dumps(data.model_dump(), separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


# --- SQL -----------------------------------------------------------------------------------
def insert_session(
    db: TenantDB,
    session_id: str,
    owner_id: str,
    title: str | None,
    tools: bool = False,
    write_tools: bool = False,
) -> Statement:
    return db.statement(
        "INSERT INTO chat_sessions (tenant_id, id, owner_id, title, tools, write_tools)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (session_id, owner_id, title, int(tools), int(write_tools)),
    )


def select_sessions(db: TenantDB, owner_id: str) -> Statement:
    return db.statement(
        "SELECT id, title, created_at, updated_at, tools, write_tools FROM chat_sessions"
        " WHERE tenant_id = ?1 AND owner_id = ?2"
        " ORDER BY updated_at DESC LIMIT 200",
        (owner_id,),
    )


def select_session(db: TenantDB, session_id: str, owner_id: str) -> Statement:
    return db.statement(
        "SELECT id, title, created_at, updated_at, tools, write_tools FROM chat_sessions"
        " WHERE tenant_id = ?1 AND id = ?2 AND owner_id = ?3",
        (session_id, owner_id),
    )


def select_messages(db: TenantDB, session_id: str, limit: int = 500) -> Statement:
    return db.statement(
        "SELECT seq, role, content, status, citations, meta, created_at FROM chat_messages"
        " WHERE tenant_id = ?1 AND session_id = ?2 ORDER BY seq DESC LIMIT ?3",
        (session_id, limit),
    )


def insert_message(
    db: TenantDB,
    session_id: str,
    role: str,
    content: str,
    status: str,
    citations: str = "[]",
    meta: str = "{}",
) -> Statement:
    return db.statement(
        "INSERT INTO chat_messages (tenant_id, session_id, seq, role, content, status, citations, meta)"
        " VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM chat_messages WHERE tenant_id = ?1"
        " AND session_id = ?2), ?3, ?4, ?5, ?6, ?7)",
        (session_id, role, content, status, citations, meta),
    )


def update_last_assistant(
    db: TenantDB, session_id: str, content: str, status: str, citations: str, meta: str
) -> Statement:
    return db.statement(
        "UPDATE chat_messages SET content = ?3, status = ?4, citations = ?5, meta = ?6 WHERE tenant_id = ?1"
        " AND session_id = ?2 AND seq = (SELECT MAX(seq) FROM chat_messages WHERE tenant_id = ?1"
        " AND session_id = ?2 AND role = 'assistant')",
        (session_id, content, status, citations, meta),
    )


def touch_session(db: TenantDB, session_id: str) -> Statement:
    return db.statement(
        "UPDATE chat_sessions SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE tenant_id = ?1 AND id = ?2",
        (session_id,),
    )


def delete_session(db: TenantDB, session_id: str, owner_id: str) -> list[Statement]:
    return [
        db.statement(
            "DELETE FROM chat_messages WHERE tenant_id = ?1 AND session_id = ?2 AND EXISTS (SELECT 1 FROM"
            " chat_sessions WHERE tenant_id = ?1 AND id = ?2 AND owner_id = ?3)",
            (session_id, owner_id),
        ),
        db.statement(
            "DELETE FROM chat_sessions WHERE tenant_id = ?1 AND id = ?2 AND owner_id = ?3",
            (session_id, owner_id),
        ),
    ]


def decode_session(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "tools": bool(row["tools"]), "write_tools": bool(row["write_tools"])}


def decode_message(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "citations": json.loads(row["citations"]), "meta": json.loads(row["meta"])}


def new_session_id() -> str:
    return new_id("s")


def answer_request(message: ChatMessageRequest, retrieval_query: str) -> AnswerRequest:
    return AnswerRequest(
        query=retrieval_query[:2000], filters=message.filters, selected_text=message.selected_text
    )


async def stream_answer(
    db: TenantDB,
    session_id: str,
    items: AsyncIterator[Item | ToolCalled | ToolReturned],
    meta: dict[str, Any],
) -> AsyncIterator[bytes]:
    """SSE events for a live answer (rag.live); the stored message follows what the client
    received. `usage` events are for the gateway's budget, which takes them out of the stream."""
    sent: list[str] = []
    cited: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    status, finished = "partial", None
    usage: dict[str, int] = {}
    try:
        await db.run(insert_message(db, session_id, "assistant", "", "streaming"))
        async for item in items:
            if isinstance(item, ToolCalled):
                yield sse(
                    "tool_call", ToolCallEvent(id=item.id, name=item.name, arguments=item.arguments)
                )
            elif isinstance(item, ToolReturned):
                steps.append(item.step.model_dump())
                s = item.step
                returned = ToolResultEvent(
                    id=s.id, name=s.name, ok=s.ok, result=s.result, error=s.error
                )
                yield sse("tool_result", returned)
            elif isinstance(item, Sentence):
                for token in re.findall(r"\S+\s*", item.text + " "):
                    sent.append(token)  # handed to the transport: counts as sent if we stop
                    yield sse("token", TokenEvent(text=token))
                for citation in item.citations:
                    cited.append(citation.model_dump())
                    yield sse("citation", citation)
            elif isinstance(item, Spent):
                yield sse("usage", SpentEvent(tokens=item.tokens))
            elif isinstance(item, Failed):
                status, usage = "error", item.usage
                yield sse("error", ErrorEvent(code=item.code, message=item.message))
                return
            else:
                finished, usage = item, item.usage
                done = DoneEvent(
                    usage=item.usage,
                    confidence=item.confidence,
                    abstained=item.abstained,
                    follow_ups=item.follow_ups,
                    generated_by=item.generated_by,
                    dropped_sentences=item.dropped,
                    intent=item.intent,
                    rewritten_query=item.rewritten_query,
                )
                yield sse("done", done)
                status = "complete"
    except Exception as exc:
        status = "error"
        log("chat_stream_error", level="error", error=repr(exc)[:300])
        failed = ErrorEvent(code="internal_error", message="the answer could not be completed")
        yield sse("error", failed)
    finally:
        # Runs on completion, on error, and when the client disconnects (GeneratorExit).
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()  # the reader went away: the model stops writing
        outcome = {
            "confidence": finished.confidence if finished else 0.0,
            "abstained": finished.abstained if finished else False,
            "usage": usage,
            **({"tool_calls": steps} if steps else {}),
        }
        await db.batch(
            [
                update_last_assistant(
                    db,
                    session_id,
                    "".join(sent).strip(),
                    status,
                    json.dumps(cited),
                    json.dumps({**meta, **outcome}),
                ),
                touch_session(db, session_id),
            ]
        )
