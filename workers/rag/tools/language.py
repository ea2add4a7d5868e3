"""Language tools: summarize, extract entities, classify intent.

A model's output is never taken on trust: a summary's sentences are claims whose quotes the
verifier checks against the stored chunks (rag.citations), exactly like an answer's; an entity
is kept only where it occurs in the text (its span is computed here, not taken from the model);
intent labels come from embedding similarity, so they are always from the label set.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from kernel.contracts.api import EntityType, GeneratedBy, IntentLabel, SearchHit
from kernel.contracts.llm import GenerateRequest, Source, TaskRequest, TaskResponse, TaskType
from kernel.contracts.tools import (
    BUILTIN_ENTITY_TYPES,
    DEFAULT_INTENTS,
    MAX_TOOL_TEXT,
    ClassifyIntentArgs,
    ClassifyIntentResult,
    Entity,
    ExtractEntitiesArgs,
    ExtractEntitiesResult,
    LabelScore,
    SummarizeArgs,
    SummarizeResult,
    SummarySentence,
)
from kernel.domain.prompt_format import summary_question
from kernel.domain.wordpiece import count_tokens
from kernel.runtime.errors import ValidationFailed
from rag.allowance import model_allowance
from rag.answer import call_llm, claims_of, page_starts
from rag.citations import Verifier
from rag.llm_client import ask_llm
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.knowledge import ingest_get
from rag.understanding import cosine

# (sentences, max_tokens) per length
LENGTHS = {"short": (3, 250), "medium": (6, 500), "long": (10, 900)}
SUMMARY_TOKEN_BUDGET = 3000  # of source text per summary; longer documents are sampled evenly
TEXT_PASSAGE_CHARS = 1200
BUILTIN_DESCRIPTIONS = {
    "person": "a person's name",
    "place": "a geographic place: a country, city, region, river, mountain",
    "organization": "a company, school, university, agency, government body or team",
    "date": "a date, a year or a period",
}
INTENT_TEMPERATURE = 0.05  # softmax over cosine similarities: MiniLM/bge cosines sit close


# --- summarize ----------------------------------------------------------------------------------
async def _document_hits(box: Toolbox, args: SummarizeArgs, caller: Caller) -> list[SearchHit]:
    """The live version's chunks (of one section), in order, sampled evenly to the budget."""
    assert args.document_id is not None
    _, _, hits = await section_hits(box, caller, args.document_id, args.section)
    return sample(hits, SUMMARY_TOKEN_BUDGET)


async def section_hits(
    box: Toolbox, caller: Caller, document_id: str, section: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None, list[SearchHit]]:
    """(the document, the section or None, the live version's chunks of it in order): each
    chunk cut to the section and to where the previous one ended, so together they are the
    section's text once, and every citation into them is a span of the stored text."""
    document = await ingest_get(box, caller, f"/documents/{document_id}")  # authorizes
    span = (0, 1 << 62)
    found: dict[str, Any] | None = None
    if section is not None:
        found = (
            await ingest_get(
                box,
                caller,
                f"/documents/{document_id}/sections?section={_q(section)}&max_chars=1",
            )
        )["section"]
        assert found is not None
        span = (found["char_start"], found["char_end"])
    rows = (
        await box.db(caller).execute(
            "SELECT vc.chunk_id, vc.char_start, vc.char_end, vc.page, vc.heading_path, c.text"
            " FROM version_chunks vc JOIN documents d ON d.tenant_id = vc.tenant_id"
            " AND d.id = vc.document_id AND d.live_version = vc.version"
            " JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id"
            " WHERE vc.tenant_id = ?1 AND vc.document_id = ?2 AND d.deleted_at IS NULL"
            " AND vc.char_end > ?3 AND vc.char_start < ?4 ORDER BY vc.position",
            (document_id, span[0], span[1]),
        )
    ).rows
    hits = []
    previous_end = span[0]
    for r in rows:
        # A chunk that straddles the section's edge is cut to it: nothing outside is cited.
        start = max(int(r["char_start"]), span[0], previous_end)
        end = min(int(r["char_end"]), span[1])
        if end <= start:
            continue
        previous_end = end
        offset = start - int(r["char_start"])
        text = str(r["text"])[offset : offset + end - start]
        if text.strip():
            hits.append(
                SearchHit(
                    document_id=document_id,
                    version=int(document["live_version"]),
                    title=str(document["title"]),
                    heading_path=json.loads(str(r["heading_path"])),
                    chunk_id=str(r["chunk_id"]),
                    text=text,
                    score=1.0,
                    page=r["page"],
                    page_start=r["page"],
                    char_start=start,
                    char_end=end,
                )
            )
    return document, found, hits


def sample(hits: list[SearchHit], budget: int) -> list[SearchHit]:
    """Every chunk if they fit the budget, else evenly spaced ones (in order) that do."""
    sizes = [count_tokens(h.text) for h in hits]
    if sum(sizes) <= budget:
        return hits
    keep = max(1, int(len(hits) * budget / max(1, sum(sizes))))
    step = len(hits) / keep
    chosen = sorted({min(len(hits) - 1, int(i * step)) for i in range(keep)})
    out: list[SearchHit] = []
    used = 0
    for i in chosen:
        if out and used + sizes[i] > budget:
            break
        out.append(hits[i])
        used += sizes[i]
    return out


def text_hits(text: str) -> list[SearchHit]:
    """A given text as passages (split at paragraph, then sentence, ends) to cite and verify."""
    hits: list[SearchHit] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + TEXT_PASSAGE_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n\n", start, end), text.rfind(". ", start, end))
            end = cut + 2 if cut > start else end
        piece = text[start:end]
        if piece.strip():
            hits.append(
                SearchHit(
                    document_id="",
                    version=0,
                    title="text",
                    heading_path=[],
                    chunk_id=f"text-{len(hits)}",
                    text=piece,
                    score=1.0,
                    char_start=start,
                    char_end=end,
                )
            )
        start = end
    return hits[:20]


async def summarize(box: Toolbox, args: SummarizeArgs, caller: Caller) -> BaseModel:
    stored_document = args.document_id is not None
    hits = (
        await _document_hits(box, args, caller) if stored_document else text_hits(args.text or "")
    )
    if not hits:
        raise ValidationFailed("there is no text to summarize (is the document still ingesting?)")
    sentences, max_tokens = LENGTHS[args.length]
    db = box.db(caller)
    allowed = await model_allowance(db)
    generate = GenerateRequest(
        question=summary_question(sentences, args.format == "bullets"),
        sources=[Source(n=i, text=h.text) for i, h in enumerate(hits, start=1)],
        task="summarize",
        max_tokens=max_tokens,
        providers=allowed.providers,
        models=allowed.models,
    )
    generated = await call_llm(box.b, caller.scope, generate, caller.request_id)
    caller.spent += generated.usage.total_tokens
    pages = await page_starts(db, hits) if stored_document else {}
    verifier = Verifier(hits, {h.chunk_id: h.text for h in hits}, pages)
    kept: list[SummarySentence] = []
    # The chunks were read from D1 just now: the verifier's "stored" text is the same rows.
    for claim in claims_of(generated):
        text, _ = verifier.verify(claim)
        if text is None:
            continue
        numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text[len(claim.text) :])})
        kept.append(SummarySentence(text=claim.text, citations=numbers if stored_document else []))
    dropped = verifier.dropped + generated.malformed_claims
    rendered = [s.text + "".join(f" [{n}]" for n in s.citations) for s in kept]
    summary = (
        "\n".join(f"- {line}" for line in rendered)
        if args.format == "bullets"
        else " ".join(rendered)
    )
    return SummarizeResult(
        summary=summary,
        format=args.format,
        sentences=kept,
        citations=verifier.citations if stored_document else [],
        dropped_sentences=dropped,
        generated_by=GeneratedBy(
            provider=generated.provider, model=generated.model, tried=generated.tried
        ),
    )


def _q(value: str) -> str:
    return quote(value, safe="")


# --- the llm Worker's /task ---------------------------------------------------------------------
async def run_task(box: Toolbox, caller: Caller, request: TaskRequest) -> TaskResponse:
    allowed = await model_allowance(box.db(caller))
    request.providers, request.models = allowed.providers, allowed.models
    done = await ask_llm(
        box.b, caller.scope.tenant_id, caller.request_id, "/task", request, TaskResponse
    )
    caller.spent += done.usage.total_tokens
    return done


async def document_text(box: Toolbox, caller: Caller, document_id: str) -> str:
    """The live version's text (at most MAX_TOOL_TEXT characters), read as the caller."""
    found = await ingest_get(
        box, caller, f"/documents/{document_id}/sections?max_chars={MAX_TOOL_TEXT}&whole=true"
    )
    return str(found["section"]["text"]) if found.get("section") else ""


async def tenant_settings(box: Toolbox, caller: Caller) -> dict[str, Any]:
    rows = (
        await box.db(caller).execute(
            "SELECT entity_types, intent_labels FROM tenant_settings WHERE tenant_id = ?1"
        )
    ).rows
    if not rows:
        return {}
    return {k: json.loads(str(v)) for k, v in rows[0].items() if v is not None}


# --- extract_entities ---------------------------------------------------------------------------
async def extract_entities(box: Toolbox, args: ExtractEntitiesArgs, caller: Caller) -> BaseModel:
    custom = {t.name: t for t in args.custom_types}
    for stored in (await tenant_settings(box, caller)).get("entity_types", []):
        custom.setdefault(stored["name"], EntityType.model_validate(stored))
    known = {**{n: BUILTIN_DESCRIPTIONS[n] for n in BUILTIN_ENTITY_TYPES}}
    known |= {n: t.description for n, t in custom.items()}
    wanted = args.types or list(known)
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise ValidationFailed(
            f"types: unknown entity type {unknown[0]!r}; known: {', '.join(known)}",
            details={"fields": [{"field": "types", "message": "unknown entity type"}]},
        )
    text = args.text if args.text is not None else ""
    if args.document_id is not None:
        text = await document_text(box, caller, args.document_id)
    done = await run_task(
        box,
        caller,
        TaskRequest(
            task="extract_entities",
            text=text,
            types=[TaskType(name=n, description=known[n]) for n in wanted],
        ),
    )
    entities, dropped = ground_entities(text, done.output.get("entities"), set(wanted))
    return ExtractEntitiesResult(
        entities=entities,
        types=wanted,
        dropped=dropped,
        generated_by=GeneratedBy(provider=done.provider, model=done.model, tried=done.tried),
    )


def ground_entities(text: str, items: Any, types: set[str]) -> tuple[list[Entity], int]:
    """Entities that occur in `text` with a requested type; (kept, dropped)."""
    kept: dict[tuple[str, str], Entity] = {}
    dropped = 0
    for item in items if isinstance(items, list) else []:
        name = item.get("text") if isinstance(item, dict) else None
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(kind, str) or kind not in types:
            dropped += 1
            continue
        name = name.strip()
        at = text.find(name) if name else -1
        if at < 0 and name:
            lowered = text.casefold().find(name.casefold())
            if lowered >= 0 and len(text.casefold()) == len(text):
                at, name = lowered, text[lowered : lowered + len(name)]
        if at < 0 or len(name) > 200:
            dropped += 1  # not in the text: the model made it up
            continue
        key = (name.casefold(), kind)
        if key not in kept:
            kept[key] = Entity(
                text=name, type=kind, char_start=at, char_end=at + len(name), count=text.count(name)
            )
    return sorted(kept.values(), key=lambda e: (e.char_start, e.type)), dropped


# --- classify_intent ----------------------------------------------------------------------------
async def classify_intent(box: Toolbox, args: ClassifyIntentArgs, caller: Caller) -> BaseModel:
    labels = args.labels
    if labels is None:
        stored = (await tenant_settings(box, caller)).get("intent_labels")
        labels = (
            [IntentLabel.model_validate(x) for x in stored] if stored else list(DEFAULT_INTENTS)
        )
    scores = await intent_scores(box, args.text, labels)
    chosen = [s for s in scores if s.confidence >= args.threshold] if args.multi_label else []
    return ClassifyIntentResult(
        labels=chosen or scores[:1], scores=scores, method="embedding similarity"
    )


async def intent_scores(box: Toolbox, text: str, labels: list[IntentLabel]) -> list[LabelScore]:
    """Softmax over the cosine similarity of the text to each label's `name: description`."""
    message = await box.embed(text[:2000])
    sims = []
    for label in labels:
        vector = await box.embed(f"{label.name.replace('_', ' ')}: {label.description}")
        sims.append(cosine(message, vector))
    top = max(sims)
    weights = [math.exp((s - top) / INTENT_TEMPERATURE) for s in sims]
    total = sum(weights)
    scores = [
        LabelScore(label=label.name, confidence=round(w / total, 4))
        for label, w in zip(labels, weights, strict=True)
    ]
    return sorted(scores, key=lambda s: -s.confidence)
