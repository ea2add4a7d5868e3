"""Feedback on a recording: its analysis plus the knowledge base, through the model layer, checked.

The recording and its analysis are read from the ingest Worker as the caller (it decides who
may: the owner, their teachers, admins). The knowledge base is searched as the caller for the
weakest and strongest measured dimensions (and the caller's `focus`); the model (llm `/task`
feedback) writes an overall assessment, strengths, improvements, per-segment observations
with suggestions and practice recommendations. Each statement is then checked:

- `analysis` statements (source 0) must name a dimension the analysis measured — a dimension it
  did not measure cannot be talked about;
- `knowledge` statements must rest on a quote the verifier finds in the cited passage — they
  keep their verified citation numbers, and are dropped otherwise.

Stored with history in `recording_feedback`, keyed by (analysis, planned model, PROMPT_VERSION,
focus): asking again for the same is served from there, free.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from kernel.contracts.api import GeneratedBy, SearchHit, SearchRequest
from kernel.contracts.llm import Source, TaskRequest
from kernel.contracts.workspaces import Feedback, FeedbackRequest, SegmentFeedback, Statement
from kernel.domain.wordpiece import count_tokens
from kernel.runtime.errors import Conflict, UpstreamError
from kernel.runtime.ids import new_id
from rag.citations import Verifier, from_structured
from rag.learning import cache_key, plan
from rag.search import hybrid_search
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.knowledge import ingest_get
from rag.tools.language import run_task

PROMPT_VERSION = "1"
MAX_SOURCES = 8
SOURCE_TOKENS = 1500
OUTPUT_TOKENS = 1500
MAX_ITEMS = 8
MAX_STATEMENT_CHARS = 800
COLUMNS = "id, recording_id, analysis_id, body, created_at"
_MARKER = re.compile(r"\[(\d+)\]")


async def latest_analysis(
    box: Toolbox, caller: Caller, recording_id: str, analysis_id: str | None
) -> dict[str, Any]:
    base = f"/recordings/{recording_id}/analysis"
    if analysis_id is not None:
        found = await ingest_get(box, caller, f"{base}/{analysis_id}")
    else:
        listed: list[dict[str, Any]] = (await ingest_get(box, caller, base))["analyses"]
        found = next((a for a in listed if a["status"] == "done"), {})
    if found.get("status") != "done":
        raise Conflict(
            "the recording has no finished analysis: POST /v1/recordings/{id}/analysis first",
            code="analysis_required",
        )
    return found


async def _evidence(
    box: Toolbox, caller: Caller, analysis: dict[str, Any], focus: str | None
) -> list[SearchHit]:
    dims = sorted(analysis["dimensions"], key=lambda d: d["score"])
    topics = [f"{d['label']} {d.get('description') or ''}".strip() for d in dims[:2] + dims[-1:]]
    if focus:
        topics.insert(0, focus)
    hits: list[SearchHit] = []
    tokens = 0
    for topic in dict.fromkeys(topics):
        found = await hybrid_search(
            box.b,
            caller.scope,
            SearchRequest(query=f"how to improve {topic} practice", top_k=3, rerank=True),
            box.embed,
        )
        for hit in found.results:
            size = count_tokens(hit.text)
            if any(h.chunk_id == hit.chunk_id for h in hits) or tokens + size > SOURCE_TOKENS:
                continue
            hits.append(hit)
            tokens += size
            if len(hits) >= MAX_SOURCES:
                return hits
    return hits


class _Checker:
    """Keeps the model's statements that hold, counting the others."""

    def __init__(self, hits: list[SearchHit], measured: set[str]) -> None:
        self.verifier = Verifier(hits, {h.chunk_id: h.text for h in hits})
        self.measured = measured
        self.dropped = 0

    def statement(self, item: Any) -> Statement | None:
        if not isinstance(item, dict):
            self.dropped += 1
            return None
        text = str(item.get("text") or "").strip()[:MAX_STATEMENT_CHARS]
        dimension = str(item.get("dimension") or "") or None
        source, quote = item.get("source"), item.get("quote")
        if not text:
            return None  # an empty slot (no suggestion), not a claim
        if dimension is not None and dimension not in self.measured:
            self.dropped += 1  # about a dimension the analysis did not measure
            return None
        if isinstance(source, int) and source > 0:
            if not isinstance(quote, str) or not quote.strip():
                self.dropped += 1
                return None
            claim = from_structured(text, source, quote)
            shown, _ = self.verifier.verify(claim)
            if shown is None:
                self.dropped += 1
                return None
            cited = sorted({int(n) for n in _MARKER.findall(shown[len(claim.text) :])})
            return Statement(
                text=claim.text, basis="knowledge", dimension=dimension, citations=cited
            )
        if dimension is None:
            self.dropped += 1  # neither measured nor sourced: not feedback we can stand behind
            return None
        return Statement(text=text, basis="analysis", dimension=dimension)

    def many(self, items: Any) -> list[Statement]:
        out = []
        for item in (items if isinstance(items, list) else [])[:MAX_ITEMS]:
            kept = self.statement(item)
            if kept is not None:
                out.append(kept)
        return out


def check(
    output: dict[str, Any], hits: list[SearchHit], analysis: dict[str, Any], duration_s: float
) -> tuple[dict[str, Any], Verifier, int]:
    measured = {str(d["name"]) for d in analysis["dimensions"]}
    checker = _Checker(hits, measured)
    overall = checker.statement(output.get("overall"))
    if overall is None:
        raise UpstreamError(
            "the model's overall assessment did not rest on the analysis or the sources",
            code="model_output_invalid",
        )
    segments = []
    items = output.get("segments")
    for item in (items if isinstance(items, list) else [])[:MAX_ITEMS]:
        start = item.get("start_s") if isinstance(item, dict) else None
        end = item.get("end_s") if isinstance(item, dict) else None
        if not (
            isinstance(start, int | float)
            and isinstance(end, int | float)
            and 0 <= start < end <= duration_s + 0.05
        ):
            checker.dropped += 1
            continue
        observation = checker.statement(item.get("observation"))
        if observation is None:
            continue
        segments.append(
            SegmentFeedback(
                start_s=float(start),
                end_s=float(end),
                observation=observation,
                suggestion=checker.statement(item.get("suggestion")),
            )
        )
    body = {
        "overall": overall,
        "strengths": checker.many(output.get("strengths")),
        "improvements": checker.many(output.get("improvements")),
        "segments": segments,
        "practice": checker.many(output.get("practice")),
    }
    return body, checker.verifier, checker.dropped


async def generate(
    box: Toolbox, caller: Caller, recording_id: str, ask: FeedbackRequest
) -> tuple[Feedback, bool]:
    db = box.db(caller)
    recording = await ingest_get(box, caller, f"/recordings/{recording_id}")  # authorizes
    analysis = await latest_analysis(box, caller, recording_id, ask.analysis_id)
    planned = await plan(box, caller)
    key = cache_key("feedback", analysis["id"], planned.model, PROMPT_VERSION, ask.focus or "")
    rows = (
        await db.execute(
            f"SELECT {COLUMNS} FROM recording_feedback WHERE tenant_id = ?1 AND cache_key = ?2",
            (key,),
        )
    ).rows
    if rows:
        return Feedback.model_validate({**json.loads(str(rows[0]["body"])), "cached": True}), True
    hits = await _evidence(box, caller, analysis, ask.focus)
    done = await run_task(
        box,
        caller,
        TaskRequest.model_validate(
            {
                "task": "feedback",
                "sources": [Source(n=i, text=h.text) for i, h in enumerate(hits, start=1)],
                "analysis": {
                    "duration_s": recording["duration_s"],
                    "dimensions": analysis["dimensions"],
                    "segments": analysis["segments"],
                },
                "focus": ask.focus,
                "max_tokens": OUTPUT_TOKENS,
            },
            strict=False,
        ),
    )
    body, verifier, dropped = check(
        done.output, hits, analysis, float(recording["duration_s"] or 0.0)
    )
    feedback_id = new_id("fb")
    reply = Feedback(
        id=feedback_id,
        recording_id=recording_id,
        analysis_id=str(analysis["id"]),
        **body,
        citations=verifier.citations,
        dropped_statements=dropped,
        generated_by=GeneratedBy(provider=done.provider, model=done.model, tried=done.tried),
        prompt_version=PROMPT_VERSION,
        created_at=_now(),
        usage=done.usage.model_dump(),
    )
    await db.execute(
        "INSERT INTO recording_feedback (tenant_id, id, recording_id, analysis_id, cache_key,"
        " model, prompt_version, requested_by, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (tenant_id, cache_key) DO NOTHING",
        (
            feedback_id,
            recording_id,
            analysis["id"],
            key,
            done.model,
            PROMPT_VERSION,
            caller.principal,
            reply.model_dump_json(exclude={"usage", "cached"}),
        ),
    )
    return reply, False


async def history(box: Toolbox, caller: Caller, recording_id: str) -> list[Feedback]:
    await ingest_get(box, caller, f"/recordings/{recording_id}")  # authorizes
    rows = (
        await box.db(caller).execute(
            f"SELECT {COLUMNS} FROM recording_feedback WHERE tenant_id = ?1 AND recording_id = ?2"
            " ORDER BY created_at DESC, id DESC LIMIT 50",
            (recording_id,),
        )
    ).rows
    return [Feedback.model_validate(json.loads(str(r["body"]))) for r in rows]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
