"""Stand-in for a model writing feedback on a recording (the `performance_feedback` schema).

Not a model: templates over the analysis (strongest and weakest measured dimensions, the
segments where the weakest one dips) and, for advice, the source sentence that shares the most
words with a dimension's label and description, quoted exactly. It says nothing about a
dimension the analysis does not list, and calls a descriptive (`graded: false`) one neither a
strength nor a weakness — as the prompt asks a real model to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

NAME = "stand-in: feedback templates over the analysis + quoted source sentences (not a model)"
_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "how",
        "this",
        "that",
        "are",
        "was",
        "from",
        "your",
        "you",
        "its",
        "has",
        "have",
    ]
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _stem(words: set[str]) -> set[str]:
    return {w[:5] for w in words}


def _statement(text: str, dimension: str = "", source: int = 0, quote: str = "") -> dict[str, Any]:
    return {"text": text, "dimension": dimension, "source": source, "quote": quote}


def _measured(d: dict[str, Any]) -> str:
    value, unit = d.get("value"), d.get("unit") or ""
    shown = f"{value:.3g} {unit}".strip() if isinstance(value, int | float) else ""
    return f"{shown}, score {float(d['score']):.2f}" if shown else f"score {float(d['score']):.2f}"


def feedback(
    analysis: dict[str, Any], sources: Sequence[str], split: Callable[[str], list[str]]
) -> dict[str, Any]:
    dims = sorted(analysis.get("dimensions") or [], key=lambda d: float(d["score"]))
    sentences = [(k, s) for k, text in enumerate(sources, start=1) for s in split(text) or [text]]
    used: set[str] = set()

    def advice(topic: str, extra: str = "") -> dict[str, Any] | None:
        want = _stem(_words(topic + " " + extra))
        best, best_overlap = None, 0
        for k, sentence in sentences:
            overlap = len(want & _stem(_words(sentence)))
            if overlap > best_overlap and sentence not in used:
                best, best_overlap = (k, sentence), overlap
        if best is None:
            return None
        used.add(best[1])
        return _statement(best[1], "", best[0], best[1])

    graded = [d for d in dims if d.get("graded", True)]
    described = [d for d in dims if not d.get("graded", True)]
    if not graded:
        listed = ", ".join(f"{d['label']} {_measured(d)}" for d in described)
        return {
            "overall": _statement(
                f"Measured: {listed}." if described else "The analysis measured nothing.",
                str(described[0]["name"]) if described else "",
            ),
            "strengths": [],
            "improvements": [],
            "segments": [],
            "practice": [],
        }
    weakest, strongest = graded[0], graded[-1]
    context = "".join(f" {d['label']}: {_measured(d)}." for d in described)
    overall = _statement(
        f"Across {len(graded)} graded dimension(s), {strongest['label']} is strongest"
        f" ({_measured(strongest)}) and {weakest['label']} needs the most work"
        f" ({_measured(weakest)}).{context}",
        str(weakest["name"]),
    )
    strengths = [
        _statement(f"{d['label']} is a strength: {_measured(d)}.", str(d["name"]))
        for d in reversed(graded)
        if float(d["score"]) >= 0.6 and d is not weakest
    ][:2]
    improvements: list[dict[str, Any]] = []
    # The weakest graded dimension always (it is relative), and the next when it is low too.
    for d in [weakest, *[d for d in graded[1:2] if float(d["score"]) < 0.7]]:
        improvements.append(_statement(f"Work on {d['label']}: {_measured(d)}.", str(d["name"])))
        tip = advice(str(d["label"]), str(d.get("description", "")))
        if tip is not None:
            improvements.append({**tip, "dimension": str(d["name"])})
    segments = []
    scored = [
        (float(s2["score"]), seg)
        for seg in analysis.get("segments") or []
        for s2 in seg.get("dimensions") or []
        if s2.get("name") == weakest["name"]
    ]
    for score, seg in sorted(scored, key=lambda p: p[0])[:3]:
        observation = _statement(
            f"From {seg['start_s']:.0f} s to {seg['end_s']:.0f} s, {weakest['label']} scores"
            f" {score:.2f}.",
            str(weakest["name"]),
        )
        tip = advice(str(weakest["label"]), "practice")
        segments.append(
            {
                "start_s": seg["start_s"],
                "end_s": seg["end_s"],
                "observation": observation,
                "suggestion": tip or _statement("", str(weakest["name"])),
            }
        )
    practice = [
        tip
        for d in graded[:2]
        if (tip := advice(f"practice exercise {d['label']}", str(d.get("description", ""))))
    ]
    return {
        "overall": overall,
        "strengths": strengths,
        "improvements": improvements,
        "segments": segments,
        "practice": practice,
    }
