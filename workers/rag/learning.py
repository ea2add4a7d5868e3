"""Personalized and translated sections, each cached so a chapter is never paid for twice.

Personalize: the section's chunks go to the model (llm `/task` personalize) with the reader's
level; its blocks come back and are checked — headings, list items and code must be the
section's own, a paragraph must rest on a quote the verifier finds in the stored chunk (its
citation), a note (a definition, a pointer further) is shown as the model's, marked
`grounded: false`. Translate: the section (or a text) as blocks, each block's words through
m2m100 on Workers AI or a model-layer provider, markers and code kept; a reply left
untranslated or cut short is refused (502), never cached.

Cache keys: the document version's content hash, the section, the level or language, the
model that would answer now (llm `/plan`) and PROMPT_VERSION — so a new version, another model
or a new prompt misses, and a miss for a document clears its entries of older versions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kernel.bindings.ports import Statement
from kernel.contracts.api import GeneratedBy, SearchHit
from kernel.contracts.learning import (
    RTL,
    Block,
    PersonalizeRequest,
    PersonalizeResponse,
    SectionRef,
    TranslateRequest,
    TranslateResponse,
)
from kernel.contracts.llm import Plan, PlanRequest, Source, TaskRequest, TextBlock
from kernel.domain.blocks import render, section_blocks, split_marker
from kernel.domain.tenancy import TenantDB
from kernel.domain.wordpiece import count_tokens
from kernel.runtime.errors import PayloadTooLarge, UpstreamError
from kernel.runtime.ids import sha256_hex
from rag.allowance import model_allowance
from rag.citations import Verifier, from_structured
from rag.llm_client import ask_llm
from rag.tools.dispatch import Caller, Toolbox
from rag.tools.language import run_task, section_hits
from rag.usercontext import level_of

PROMPT_VERSION = "1"
PERSONALIZE_INPUT_TOKENS = 2000  # + PERSONALIZE_OUTPUT_TOKENS: at most 4,000 per call
PERSONALIZE_OUTPUT_TOKENS = 2000
TRANSLATE_INPUT_TOKENS = 1500  # + TRANSLATE_OUTPUT_TOKENS: at most 3,000 per call
TRANSLATE_OUTPUT_TOKENS = 1500
TRANSLATION_MODEL = "@cf/meta/m2m100-1.2b"
MAX_NOTES, MAX_NOTE_CHARS = 5, 600
_LETTERS = re.compile(r"[^\W\d_]{2,}")


# --- the cache ----------------------------------------------------------------------------------
def cache_key(*parts: str) -> str:
    return sha256_hex(json.dumps(parts, ensure_ascii=False))


def select_cached(db: TenantDB, kind: str, key: str) -> Statement:
    return db.statement(
        "SELECT body FROM learning_cache WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3",
        (kind, key),
    )


def store_cached(
    db: TenantDB,
    kind: str,
    key: str,
    document_id: str | None,
    content_hash: str,
    model: str,
    body: str,
) -> Statement:
    return db.statement(
        "INSERT INTO learning_cache (tenant_id, kind, key, document_id, content_hash, model, body)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant_id, kind, key)"
        " DO UPDATE SET body = excluded.body, model = excluded.model",
        (kind, key, document_id, content_hash, model, body),
    )


def purge_stale(db: TenantDB, document_id: str, content_hash: str) -> Statement:
    """Entries of the document's older versions: a new version invalidates them."""
    return db.statement(
        "DELETE FROM learning_cache WHERE tenant_id = ?1 AND document_id = ?2"
        " AND content_hash != ?3",
        (document_id, content_hash),
    )


async def _cached(db: TenantDB, kind: str, key: str) -> dict[str, Any] | None:
    rows = (await db.run(select_cached(db, kind, key))).rows
    return json.loads(str(rows[0]["body"])) if rows else None


async def plan(box: Toolbox, caller: Caller) -> Plan:
    allowed = await model_allowance(box.db(caller))
    ask = PlanRequest(providers=allowed.providers, models=allowed.models)
    return await ask_llm(box.b, caller.scope.tenant_id, caller.request_id, "/plan", ask, Plan)


def _live(document: dict[str, Any]) -> tuple[int, str]:
    version = int(document["live_version"])
    current = next(v for v in document["versions"] if v["version"] == version)
    return version, str(current["content_hash"])


def _too_long(tokens: int, limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the {what} is {tokens} tokens; at most {limit} go to the model in one call — choose a"
        " smaller section (GET /v1/documents/{id}/sections lists them)",
        code="section_too_long",
    )


# --- personalize --------------------------------------------------------------------------------
async def personalize(
    box: Toolbox, caller: Caller, ask: PersonalizeRequest
) -> tuple[PersonalizeResponse, bool]:
    db = box.db(caller)
    document, section, hits = await section_hits(box, caller, ask.document_id, ask.section)
    section = section or _whole(hits)
    version, content_hash = _live(document)
    level = ask.level or await level_of(db, caller.scope.viewer) or "intermediate"
    tokens = sum(count_tokens(h.text) for h in hits)
    if tokens > PERSONALIZE_INPUT_TOKENS:
        raise _too_long(tokens, PERSONALIZE_INPUT_TOKENS, "section")
    planned = await plan(box, caller)
    path = " > ".join(section["path"])
    key = cache_key("personalize", content_hash, path, level, planned.model, PROMPT_VERSION)
    cached = await _cached(db, "personalize", key)
    if cached is not None:
        return PersonalizeResponse.model_validate(
            {**cached, "cached": True, "usage": _zero()}
        ), True
    done = await run_task(
        box,
        caller,
        TaskRequest.model_validate(
            {
                "task": "personalize",
                "sources": [Source(n=i, text=h.text) for i, h in enumerate(hits, start=1)],
                "level": level,
                "max_tokens": PERSONALIZE_OUTPUT_TOKENS,
            },
            strict=False,
        ),
    )
    blocks, verifier, dropped = verify_blocks(done.output.get("blocks"), hits)
    if not any(b.kind == "paragraph" for b in blocks) and any(
        k == "paragraph" for k, _ in section_blocks("".join(h.text for h in hits))
    ):
        raise UpstreamError(
            f"{done.provider} ({done.model}) returned no paragraph that rests on the section",
            code="model_output_invalid",
        )
    reply = PersonalizeResponse(
        document_id=ask.document_id,
        version=version,
        section=SectionRef(
            path=section["path"], char_start=section["char_start"], char_end=section["char_end"]
        ),
        level=level,
        content=render_blocks(blocks),
        blocks=blocks,
        citations=verifier.citations,
        dropped_blocks=dropped,
        generated_by=GeneratedBy(provider=done.provider, model=done.model, tried=done.tried),
        usage=done.usage.model_dump(),
    )
    await db.batch(
        [
            purge_stale(db, ask.document_id, content_hash),
            store_cached(
                db,
                "personalize",
                key,
                ask.document_id,
                content_hash,
                done.model,
                reply.model_dump_json(),
            ),
        ]
    )
    return reply, False


def verify_blocks(items: Any, hits: list[SearchHit]) -> tuple[list[Block], Verifier, int]:
    """The model's blocks that hold: structure copied from the section, paragraphs resting on a
    verified quote, a few bounded notes. (kept, the verifier with its citations, dropped)."""
    section_text = "".join(h.text for h in hits)
    verifier = Verifier(hits, {h.chunk_id: h.text for h in hits})
    kept: list[Block] = []
    dropped = notes = 0
    for item in items if isinstance(items, list) else []:
        kind = item.get("kind") if isinstance(item, dict) else None
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            dropped += 1
            continue
        if kind in ("heading", "list_item", "code"):
            if text.strip() in section_text:
                kept.append(Block(kind=kind, text=text.strip()))
            else:
                dropped += 1  # structure the section does not have
        elif kind == "paragraph":
            source, quote = item.get("source"), item.get("quote")
            if not isinstance(source, int) or not isinstance(quote, str) or not quote.strip():
                dropped += 1
                continue
            shown, _ = verifier.verify(from_structured(text.strip(), source, quote))
            if shown is None:
                dropped += 1
                continue
            numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", shown[len(text.strip()) :])})
            kept.append(Block(kind="paragraph", text=text.strip(), citations=numbers))
        elif kind == "note" and notes < MAX_NOTES:
            notes += 1
            kept.append(Block(kind="note", text=text.strip()[:MAX_NOTE_CHARS], grounded=False))
        else:
            dropped += 1
    return kept, verifier, dropped


def render_blocks(blocks: list[Block]) -> str:
    parts: list[tuple[str, str]] = []
    for b in blocks:
        if b.kind == "paragraph":
            parts.append((b.kind, b.text + "".join(f" [{n}]" for n in b.citations)))
        elif b.kind == "note":
            parts.append((b.kind, f"> **Note:** {b.text}"))
        else:
            parts.append((b.kind, b.text))
    return render(parts)


# --- translate ----------------------------------------------------------------------------------
async def translate(
    box: Toolbox, caller: Caller, ask: TranslateRequest, provider: str
) -> tuple[TranslateResponse, bool]:
    """`provider`: "workers-ai" (m2m100 on the AI binding) or "llm" (the model layer)."""
    db = box.db(caller)
    language = ask.target_language
    primary = language.split("-")[0].lower()
    source: SectionRef | None = None
    version: int | None = None
    if ask.document_id is not None:
        document, section, hits = await section_hits(box, caller, ask.document_id, ask.section)
        section = section or _whole(hits)
        version, content_hash = _live(document)
        text = "".join(h.text for h in hits)
        source = SectionRef(
            path=section["path"], char_start=section["char_start"], char_end=section["char_end"]
        )
    else:
        text = ask.text or ""
        content_hash = sha256_hex(text)
    tokens = count_tokens(text)
    if tokens > TRANSLATE_INPUT_TOKENS:
        raise _too_long(tokens, TRANSLATE_INPUT_TOKENS, "text to translate")
    model = TRANSLATION_MODEL if provider == "workers-ai" else (await plan(box, caller)).model
    key = cache_key("translate", content_hash, sha256_hex(text), primary, model, PROMPT_VERSION)
    cached = await _cached(db, "translate", key)
    if cached is not None:
        return TranslateResponse.model_validate({**cached, "cached": True, "usage": _zero()}), True
    original = section_blocks(text)
    if provider == "workers-ai":
        translated, usage, by = await _m2m100(box, caller, original, primary)
    else:
        translated, usage, by = await _by_model(box, caller, original, language)
    check_translation(original, translated)
    blocks = [Block(kind=k, text=t) for k, t in translated]  # type: ignore[arg-type]
    reply = TranslateResponse(
        target_language=language,
        direction="rtl" if primary in RTL else "ltr",
        content=render(translated),
        blocks=blocks,
        source=source,
        document_id=ask.document_id,
        version=version,
        generated_by=by,
        usage=usage,
    )
    statements = [
        store_cached(
            db, "translate", key, ask.document_id, content_hash, model, reply.model_dump_json()
        )
    ]
    if ask.document_id is not None:
        statements.insert(0, purge_stale(db, ask.document_id, content_hash))
    await db.batch(statements)
    return reply, False


async def _m2m100(
    box: Toolbox, caller: Caller, blocks: list[tuple[str, str]], target: str
) -> tuple[list[tuple[str, str]], dict[str, int], GeneratedBy]:
    ai = box.b.need(box.b.ai, "AI")
    out: list[tuple[str, str]] = []
    spent_in = spent_out = 0
    for kind, text in blocks:
        marker, words = split_marker(kind, text)
        if kind == "code" or not _LETTERS.search(words):
            out.append((kind, text))
            continue
        result = await ai.run(
            TRANSLATION_MODEL, {"text": words, "source_lang": "en", "target_lang": target}
        )
        translated = result.get("translated_text") if isinstance(result, dict) else None
        if not isinstance(translated, str):
            raise UpstreamError(
                f"{TRANSLATION_MODEL} returned no translated_text", code="translation_invalid"
            )
        out.append((kind, marker + translated.strip()))
        spent_in, spent_out = spent_in + count_tokens(words), spent_out + count_tokens(translated)
    # m2m100 bills in neurons, not tokens: its tokens are estimated so the daily budget holds.
    caller.spent += spent_in + spent_out
    usage = {
        "prompt_tokens": spent_in,
        "completion_tokens": spent_out,
        "total_tokens": spent_in + spent_out,
    }
    return out, usage, GeneratedBy(provider="workers-ai", model=TRANSLATION_MODEL, tried=[])


async def _by_model(
    box: Toolbox, caller: Caller, blocks: list[tuple[str, str]], language: str
) -> tuple[list[tuple[str, str]], dict[str, int], GeneratedBy]:
    done = await run_task(
        box,
        caller,
        TaskRequest(
            task="translate",
            blocks=[TextBlock(kind=k, text=t) for k, t in blocks],  # type: ignore[arg-type]
            language=language,
            max_tokens=TRANSLATE_OUTPUT_TOKENS,
        ),
    )
    items = done.output.get("blocks")
    out = [
        (str(b.get("kind")), str(b.get("text", "")))
        for b in (items if isinstance(items, list) else [])
        if isinstance(b, dict)
    ]
    if [k for k, _ in out] != [k for k, _ in blocks]:
        raise UpstreamError(
            f"{done.provider} ({done.model}) did not keep the blocks of the text",
            code="translation_invalid",
        )
    by = GeneratedBy(provider=done.provider, model=done.model, tried=done.tried)
    return out, done.usage.model_dump(), by


def check_translation(original: list[tuple[str, str]], translated: list[tuple[str, str]]) -> None:
    """Refuse a reply left untranslated (most prose blocks unchanged) or cut short."""
    prose = [
        (a, b)
        for (kind, a), (_, b) in zip(original, translated, strict=True)
        if kind != "code" and _LETTERS.search(a)
    ]
    if not prose:
        return
    same = sum(1 for a, b in prose if a.strip().casefold() == b.strip().casefold())
    if same * 2 > len(prose):
        raise UpstreamError("the translation came back untranslated", code="translation_invalid")
    if sum(len(b) for _, b in prose) < 0.3 * sum(len(a) for a, _ in prose):
        raise UpstreamError("the translation came back cut short", code="translation_invalid")


def _whole(hits: list[SearchHit]) -> dict[str, Any]:
    end = hits[-1].char_end if hits else 0
    return {"path": [], "char_start": hits[0].char_start if hits else 0, "char_end": end}


def _zero() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
