"""Stand-ins for the structured jobs a real model does in JSON mode, so every tool runs offline.

NOT models. Named as stand-ins in /health and docs/decisions.md; what the tools do around them
(validation, verifying entities against the text, budgets, audit) is the real code path.

- `extract_entities`: capitalised spans and dates, typed by cue words ("University" →
  organization, "Dr." → person, "in <Name>" → place); a tenant's own types are left to a model.
- `suggest_tags`: the most frequent content words as tags; the level from sentence length.
- summaries (`summarize_sources`, or the summary question as text): the sentences nearest the
  sources' mean MiniLM embedding, in document order, each quoting itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from emulator.ai import lexical
from emulator.ai.embeddings import MiniLMEncoder
from kernel.bindings.ports import BindingError
from kernel.domain.blocks import section_blocks

ENTITIES_NAME = "stand-in: cue-word entity tagger (not a model)"
TAGS_NAME = "stand-in: frequent-terms tagger (not a model)"
SUMMARY_NAME = "stand-in: centroid extractive summarizer over MiniLM (not a model)"
TOOLS_NAME = "stand-in: searches the knowledge base once with the question, then answers"

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}} (?:{_MONTHS})(?: \d{{4}})?|(?:{_MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
    rf"|(?:{_MONTHS}) \d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}"
    r")\b"
)
# A bare year counts only after a word that introduces a time ("in 1970", "since 1990").
_YEAR = re.compile(r"\b(?:in|since|until|by|from|circa|around) ((?:1[0-9]{3}|20[0-9]{2})s?)\b")
_NAME_WORD = r"(?:[A-Z][a-zA-Z'’-]+|[A-Z]{2,6})"
_SPAN = re.compile(rf"{_NAME_WORD}(?:\s+(?:of|the|and|de|van|von)?\s*{_NAME_WORD})*")
_ORG = frozenset(
    [
        "University",
        "College",
        "School",
        "Institute",
        "Academy",
        "Company",
        "Corporation",
        "Corp",
        "Inc",
        "Ltd",
        "Association",
        "Society",
        "Council",
        "Ministry",
        "Department",
        "Agency",
        "Foundation",
        "Bank",
        "Committee",
        "Organization",
        "Organisation",
        "Union",
        "Party",
        "Museum",
        "Library",
        "Laboratory",
        "Observatory",
        "Hospital",
        "Church",
        "Court",
        "Parliament",
        "Senate",
        "Army",
        "Navy",
        "Club",
        "Group",
        "Press",
    ]
)
_PLACE = frozenset(
    [
        "River",
        "Mountain",
        "Mount",
        "Mountains",
        "Lake",
        "Sea",
        "Ocean",
        "City",
        "Island",
        "Islands",
        "Valley",
        "Street",
        "Road",
        "County",
        "Province",
        "Republic",
        "Kingdom",
        "Desert",
        "Forest",
        "Bay",
        "Gulf",
        "Coast",
        "Peninsula",
        "Canyon",
        "Falls",
    ]
)
_TITLES = frozenset(
    [
        "Mr",
        "Mrs",
        "Ms",
        "Miss",
        "Dr",
        "Prof",
        "Professor",
        "Sir",
        "Lady",
        "Lord",
        "King",
        "Queen",
        "President",
        "Saint",
        "St",
    ]
)
_PLACE_BEFORE = re.compile(r"\b(?:in|at|from|near|across|to|into|throughout)\s+$")
_TITLE_BEFORE = re.compile(rf"\b(?:{'|'.join(_TITLES)})\.?\s+$")
_LEADS = frozenset(
    [
        "The",
        "A",
        "An",
        "On",
        "In",
        "At",
        "When",
        "After",
        "Before",
        "This",
        "That",
        "These",
        "Those",
        "It",
    ]
)


def extract_entities(text: str, types: Sequence[str]) -> list[dict[str, str]]:
    wanted = set(types)
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(span: str, kind: str) -> None:
        if kind in wanted and (span, kind) not in seen:
            seen.add((span, kind))
            found.append({"text": span, "type": kind})

    dates = {m.span() for m in _DATE.finditer(text)}
    dates |= {m.span(1) for m in _YEAR.finditer(text)}
    for start, end in sorted(dates):
        add(text[start:end], "date")
    for match in _SPAN.finditer(text):
        span, before = match.group(0), text[: match.start()]
        words = span.split()
        if any(s <= match.start() < e for s, e in dates) or words[0] in _TITLES:
            continue
        if words[0] in _MONTHS.split("|"):
            continue
        if any(w in _ORG for w in words) or (len(words) == 1 and span.isupper()):
            add(span, "organization")
        elif any(w in _PLACE for w in words) or _PLACE_BEFORE.search(before):
            add(span, "place")
        elif _TITLE_BEFORE.search(before) or (len(words) in (2, 3) and words[0] not in _LEADS):
            add(span, "person")
    return found


def suggest_tags(text: str, max_items: int) -> dict[str, Any]:
    words_in = re.findall(r"[^\W\d_]+", text.lower())
    counts = Counter(w for w in words_in if len(w) > 3 and w not in lexical.STOPWORDS)
    tags = [t for t, _ in counts.most_common(max_items)]
    sentences = [s for s in re.split(r"[.!?]+\s", text) if s.strip()]
    words = len(re.findall(r"\w+", text))
    per_sentence = words / max(1, len(sentences))
    level = "beginner" if per_sentence < 12 else "intermediate" if per_sentence < 22 else "advanced"
    english = sum(1 for w in re.findall(r"[a-z]+", text.lower()) if w in lexical.STOPWORDS)
    return {
        "tags": tags,
        "subject": tags[0] if tags else "general",
        "level": level,
        "language": "en" if english / max(1, words) > 0.15 else "und",
    }


def summarize(
    encoder: MiniLMEncoder, sources: Sequence[str], sentences: int, split: Any
) -> list[tuple[int, str]]:
    """(source, sentence) pairs: the `sentences` nearest the mean embedding, in order."""
    candidates = [
        (k, s)
        for k, source in enumerate(sources, start=1)
        for s in split(source)
        if len(lexical.terms(s)) >= 3
    ]
    if not candidates:
        return []
    vecs = encoder.encode([s for _, s in candidates])
    centroid = vecs.mean(axis=0)
    centroid /= float(np.linalg.norm(centroid)) or 1.0
    ranked = np.argsort(-(vecs @ centroid), kind="stable")[:sentences]
    return [candidates[i] for i in sorted(int(i) for i in ranked)]


def usage(
    encoder: MiniLMEncoder, messages: Sequence[dict[str, Any]], completion: str
) -> dict[str, int]:
    """Workers AI's `usage` for a reply, counted in MiniLM wordpieces (not the model's tokens)."""
    prompt = sum(encoder.count_tokens(str(m.get("content", ""))) for m in messages)
    produced = encoder.count_tokens(completion) if completion else 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": produced,
        "total_tokens": prompt + produced,
    }


def call_tools(
    tools: Any, messages: Sequence[dict[str, Any]], encoder: MiniLMEncoder
) -> dict[str, Any]:
    """Traditional function calling, as a fixed policy: the first step of a turn calls
    `search_knowledge_base` with the user's message; once a tool has answered, it stops (the
    rag Worker then writes the grounded answer). No tool offered by that name: no call."""
    if not isinstance(tools, list) or not all(isinstance(t, dict) and "name" in t for t in tools):
        raise BindingError("AI.run: tools must be a list of {name, description, parameters}")
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    answered = any(m.get("role") == "tool" for m in messages[last_user + 1 :])
    names = {t["name"] for t in tools}
    calls = []
    if last_user >= 0 and not answered and "search_knowledge_base" in names:
        query = str(messages[last_user].get("content", ""))[:2000]
        calls = [{"name": "search_knowledge_base", "arguments": {"query": query}}]
    return {
        "response": "" if calls else "Done.",
        "tool_calls": calls,
        "usage": usage(encoder, messages, json.dumps(calls) if calls else ""),
    }


PERSONALIZE_NAME = (
    "stand-in: keeps the section's structure, trims paragraphs by level (not a model)"
)
TRANSLATE_NAME = "stand-in: pseudo-translation by script mapping (not a translation)"


_KEEP_PER_LEVEL = {"beginner": 1, "intermediate": 2, "advanced": 99}


def personalize(sources: Sequence[str], level: str, split: Any) -> dict[str, Any]:
    """Headings, lists and code as written; each paragraph cut to the sentences its level keeps,
    each quoting itself from its source; a note of key terms for beginners."""
    out: list[dict[str, Any]] = []
    terms: Counter[str] = Counter()
    for k, source in enumerate(sources, start=1):
        for kind, text in section_blocks(source):
            if kind != "paragraph":
                out.append({"kind": kind, "text": text, "source": 0, "quote": ""})
                continue
            sentences = split(text) or [text]
            kept = " ".join(sentences[: _KEEP_PER_LEVEL.get(level, 2)])
            out.append({"kind": "paragraph", "text": kept, "source": k, "quote": kept})
            terms.update(w for w in re.findall(r"[A-Za-z]{7,}", text.lower()))
    if level == "beginner" and terms:
        words = ", ".join(t for t, _ in terms.most_common(3))
        out.append({"kind": "note", "text": f"Key terms: {words}.", "source": 0, "quote": ""})
    if level == "advanced":
        out.append(
            {"kind": "note", "text": "Go further: read the next section.", "source": 0, "quote": ""}
        )
    return {"blocks": out}


# One Arabic-script letter per Latin letter (a stand-in's mapping, not a transliteration).
_ARABIC_SCRIPT = dict(zip("abcdefghijklmnopqrstuvwxyz", "ابچدےفگہیجکلمنوپقرسٹؤووخیز", strict=True))


def pseudo_translate(text: str, language: str) -> str:
    """Arabic-script targets: lower-case words mapped letter by letter into Arabic script;
    others: lower-case words reversed. Numbers, punctuation and capitalised words (names) stay."""
    arabic = language.split("-")[0] in ("ur", "ar", "fa", "ps", "sd")

    def word(match: re.Match[str]) -> str:
        w = match.group(0)
        if w[0].isupper() or not w.isascii():
            return w
        return "".join(_ARABIC_SCRIPT.get(c, c) for c in w) if arabic else w[::-1]

    return re.sub(r"[A-Za-z]+", word, text)


def translate_blocks(blocks: Sequence[dict[str, Any]], language: str) -> dict[str, Any]:
    return {
        "blocks": [
            {
                "kind": b["kind"],
                "text": b["text"] if b["kind"] == "code" else pseudo_translate(b["text"], language),
            }
            for b in blocks
        ]
    }
