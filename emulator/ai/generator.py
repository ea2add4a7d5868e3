"""Stand-in for Workers AI text generation: an extractive, citation-exact composer.

Given the grounded prompt of `kernel.domain.prompt_format` it splits the sources into sentences,
scores each against the question as

    score = W_COS * MiniLM cosine(question, sentence) + W_LEX * coverage(question terms)

and answers with the best 1-3 sentences copied verbatim, each followed by its source marker
(` [2]`). A sentence joins the answer if it scores >= RELATIVE_CUTOFF x the best one. If the
best score is below ABSTAIN_THRESHOLD, or the prompt has no sources, the answer is exactly
`ABSTAIN_TEXT`. Deterministic, and immune to instructions inside sources by construction: it
never follows text, it only quotes it.

JSON mode (`response_format`) is answered for the grounded-claims schema — the claims are the
chosen sentences, each quoting itself — and for the task schemas whose stand-ins live in
emulator.ai.tasks (entities, tags); any other schema is refused, since an extractive composer
cannot fill arbitrary fields. A summary question (`prompt_format.summary_question`) is answered
with the sentences nearest the sources' centroid instead of those nearest the question.

Token counts in `usage` are MiniLM wordpieces, not the production model's tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emulator.ai import feedback, lexical, tasks
from emulator.ai.embeddings import MiniLMEncoder
from kernel.domain.prompt_format import (
    ABSTAIN_TEXT,
    citation_marker,
    parse_grounded_prompt,
    summary_sentences,
)

NAME = "stand-in: extractive citation composer over MiniLM (not an LLM)"
W_COS = 0.65
W_LEX = 0.35
# Calibrated on MiniLM: a sentence that answers scores ~0.5-0.9, an unrelated one < 0.2; a
# near miss sharing the key noun ("Treaty of Versailles?" vs a Westphalia sentence) ~0.5 still
# passes, a known limit of an extractive stand-in (its answer is then at least verbatim).
ABSTAIN_THRESHOLD = 0.45
RELATIVE_CUTOFF = 0.85
MAX_SENTENCES = 3
MIN_SENTENCE_TERMS = 2  # headings and fragments are not answers

# A sentence ends at . ! ? (plus closing quotes/brackets) followed by spaces, unless the word
# before is an abbreviation or an initial ("e.g.", "Fig.", "J. Smith"); lines are boundaries
# too, since sources are often lists and headings. Lower-case text after the stop still starts
# a new sentence: abstracts and OCR'd PDFs are often all lower case ("… of air . the model …"),
# and reading those as one sentence spliced unrelated statements into one answer.
_STOP = re.compile(r"[.!?][\"')\]]*(?=[ \t]+\S)")
_WORD_BEFORE = re.compile(r"(\w+)\W*$")
ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "al",
        "fig",
        "figs",
        "eq",
        "eqs",
        "ref",
        "refs",
        "no",
        "nos",
        "vol",
        "pp",
        "approx",
        "cf",
        "vs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "dept",
        "univ",
        "sec",
        "ch",
        "resp",
    ]
)


@dataclass(frozen=True)
class _Candidate:
    source: int  # 1-based marker
    text: str  # verbatim slice of the source


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, each a verbatim (stripped) substring of it."""
    out = []
    for line in text.splitlines():
        start = 0
        for stop in _STOP.finditer(line):
            before = line[start : stop.start()]
            word = _WORD_BEFORE.search(before)
            token = word.group(1).lower() if word else ""
            dotted = line[max(0, stop.start() - 4) : stop.start()].lower()
            if stop.group().startswith(".") and (
                (len(token) == 1 and token.isalpha())
                or token in ABBREVIATIONS
                or dotted.endswith(("e.g", "i.e"))
            ):
                continue  # "e.g." / "J." / "Fig.": not the end of a sentence
            sentence = line[start : stop.end()].strip()
            if sentence:
                out.append(sentence)
            start = stop.end()
        if line[start:].strip():
            out.append(line[start:].strip())
    return out


def compose(
    encoder: MiniLMEncoder,
    messages: Sequence[dict[str, Any]],
    max_tokens: int,
    *,
    claims: bool = False,
) -> dict[str, Any]:
    """Workers AI text-generation output for `messages`: {"response", "usage"}. `claims`: JSON
    mode with the grounded-claims schema — `response` is then `{"claims": [{text, source,
    quote}]}`, each claim one of the chosen sentences quoting itself ([] = abstention)."""
    summary = _summary(encoder, messages)
    if summary is not None:
        parts = summary
    else:
        chosen = _choose(encoder, messages)
        parts = _fit(encoder, chosen, max_tokens) if chosen else []
    answer = " ".join(f"{text} {citation_marker(k)}" for k, text in parts) or ABSTAIN_TEXT
    prompt_tokens = sum(encoder.count_tokens(str(m.get("content", ""))) for m in messages)
    response: Any = answer
    if claims:
        response = {"claims": [{"text": t, "source": k, "quote": t} for k, t in parts]}
        answer = json.dumps(response)
    completion_tokens = encoder.count_tokens(answer)
    return {
        "response": response,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def task(
    kind: str, schema: Any, messages: Sequence[dict[str, Any]], encoder: MiniLMEncoder
) -> dict[str, Any]:
    """JSON mode for a task schema (emulator.ai.tasks): the text is the last user message."""
    users = [m for m in messages if m.get("role") == "user"]
    text = str(users[-1].get("content", "") if users else "").removeprefix("Text:\n")
    if kind == "extract_entities":
        enum = schema["properties"]["entities"]["items"]["properties"]["type"].get("enum", [])
        response: dict[str, Any] = {"entities": tasks.extract_entities(text, enum)}
    elif kind == "personalize_section":
        prompt = parse_grounded_prompt(str(users[-1].get("content", ""))) if users else None
        asked = re.search(r"for a (\w+) reader", prompt.question) if prompt else None
        level = asked.group(1) if asked else "intermediate"
        response = tasks.personalize(prompt.sources if prompt else [], level, split_sentences)
    elif kind == "performance_feedback":
        content = str(users[-1].get("content", "")) if users else ""
        head = content.split("\n", 1)[0]
        analysis = (
            json.loads(head.removeprefix("Analysis: ")) if head.startswith("Analysis: ") else {}
        )
        prompt = parse_grounded_prompt(content)
        response = feedback.feedback(analysis, prompt.sources if prompt else [], split_sentences)
    elif kind == "translate_blocks":
        language = re.search(r"into (\S+) for students", str(messages[0].get("content")))
        blocks = json.loads(text.removeprefix("Blocks:\n"))
        response = tasks.translate_blocks(blocks, language.group(1) if language else "und")
    else:
        wanted = re.search(r"at most (\d+) short topic tags", str(messages[0].get("content")))
        response = tasks.suggest_tags(text, int(wanted.group(1)) if wanted else 5)
    return {"response": response, "usage": tasks.usage(encoder, messages, json.dumps(response))}


def _summary(
    encoder: MiniLMEncoder, messages: Sequence[dict[str, Any]]
) -> list[tuple[int, str]] | None:
    """The summary when the question asks for one (`summary_question`), else None."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    prompt = parse_grounded_prompt(str(last_user["content"])) if last_user else None
    count = summary_sentences(prompt.question) if prompt is not None else None
    if prompt is None or count is None:
        return None
    return tasks.summarize(encoder, prompt.sources, count, split_sentences)


def _choose(encoder: MiniLMEncoder, messages: Sequence[dict[str, Any]]) -> list[_Candidate]:
    """The sentences that answer, best first; [] means abstain."""
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    prompt = parse_grounded_prompt(str(last_user["content"])) if last_user else None
    if prompt is None or not prompt.question:
        return []
    q_terms = lexical.terms(prompt.question)
    candidates: list[_Candidate] = []
    seen: set[str] = set()
    for k, source in enumerate(prompt.sources, start=1):
        for sentence in split_sentences(source):
            if sentence not in seen and len(lexical.terms(sentence)) >= MIN_SENTENCE_TERMS:
                seen.add(sentence)
                candidates.append(_Candidate(k, sentence))
    if not candidates:
        return []
    vecs = encoder.encode([prompt.question, *(c.text for c in candidates)])
    cosines = (vecs[1:] @ vecs[0]).astype(np.float64).tolist()
    scored = sorted(
        (
            (W_COS * cos + W_LEX * lexical.coverage(q_terms, lexical.terms(c.text)), i)
            for i, (cos, c) in enumerate(zip(cosines, candidates, strict=True))
        ),
        key=lambda pair: (-pair[0], pair[1]),  # ties: earlier source/sentence first
    )
    best = scored[0][0]
    if best < ABSTAIN_THRESHOLD:
        return []
    return [candidates[i] for s, i in scored[:MAX_SENTENCES] if s >= RELATIVE_CUTOFF * best]


def _fit(
    encoder: MiniLMEncoder, chosen: list[_Candidate], max_tokens: int
) -> list[tuple[int, str]]:
    """(source, sentence) pairs whose cited text fits `max_tokens`; the first one is cut at a
    token boundary if it alone is too long (a prefix of a sentence is still a verbatim quote)."""
    parts: list[tuple[int, str]] = []
    rendered: list[str] = []
    for c in chosen:
        part = f"{c.text} {citation_marker(c.source)}"
        if encoder.count_tokens(" ".join([*rendered, part])) <= max_tokens:
            parts.append((c.source, c.text))
            rendered.append(part)
        elif not parts:
            marker = citation_marker(c.source)
            budget = max(1, max_tokens - encoder.count_tokens(marker))
            spans = encoder.token_spans(c.text)
            cut = spans[min(budget, len(spans)) - 1][1]
            parts.append((c.source, c.text[:cut]))
            break
        else:
            break
    return parts
