"""The grounded-answer prompt: how the llm Worker numbers sources, and how to read it back.

The last user message of a grounded request is

    Sources:
    [1] <source text, may span lines>
    [2] <source text>

    Question: <question>

A source runs until the next line starting with the *next* marker (`[k+1] `) or until the
blank line before the last `Question:`. Markers are numbered 1..n in order, so a stray `[7] `
line inside a source is content, not a new source; `format_grounded_prompt` defuses the one
ambiguous case (a source line starting like the next marker) by indenting it one space.
Text before `Sources:` (instructions) is allowed and ignored by the parser.

Pure Python: imported by the deployed llm Worker and by the emulator's extractive composer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SOURCES_HEADER = "Sources:"
QUESTION_PREFIX = "Question:"
ABSTAIN_TEXT = "I don't have this information in the documents."

_MARKER_LINE = re.compile(r"\[(\d+)\] ")
_QUESTION_SEP = "\n\n" + QUESTION_PREFIX


def citation_marker(index: int) -> str:
    """The marker that cites source `index` (1-based) in an answer, e.g. `[2]`."""
    return f"[{index}]"


@dataclass(frozen=True)
class GroundedPrompt:
    sources: tuple[str, ...]  # sources[k - 1] is the text of source [k]
    question: str

    def source(self, index: int) -> str:
        return self.sources[index - 1]


def format_grounded_prompt(sources: Sequence[str], question: str) -> str:
    """Build the user message for `sources` (cited as [1]..[n]) and `question`."""
    lines = [SOURCES_HEADER]
    for k, text in enumerate(sources, start=1):
        out = []
        for line in text.strip().split("\n"):
            m = _MARKER_LINE.match(line)
            out.append(" " + line if m and int(m.group(1)) == k + 1 else line)
        lines.append(f"{citation_marker(k)} " + "\n".join(out))
    return "\n".join(lines) + f"\n\n{QUESTION_PREFIX} {question.strip()}"


def parse_grounded_prompt(message: str) -> GroundedPrompt | None:
    """Read back a message built by `format_grounded_prompt`; None if it is not one."""
    head, sep, question = message.rpartition(_QUESTION_SEP)
    if not sep:
        return None
    lines = head.strip("\n").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == SOURCES_HEADER)
    except StopIteration:
        return None
    sources: list[list[str]] = []
    for line in lines[start + 1 :]:
        m = _MARKER_LINE.match(line)
        if m and int(m.group(1)) == len(sources) + 1:
            sources.append([line[m.end() :]])
        elif sources:
            sources[-1].append(line)
        elif line.strip():
            return None  # text between the header and [1]: not our format
    return GroundedPrompt(
        sources=tuple("\n".join(body).strip() for body in sources),
        question=question.strip(),
    )


# A summary is a grounded request whose question is this sentence: the llm Worker asks it, and
# the emulator's extractive stand-in recognises it (a model just reads it).
_SUMMARY = re.compile(r"^Summarize the sources in at most (\d+) sentences(, as bullet points)?\.$")


def summary_question(sentences: int, bullets: bool) -> str:
    return f"Summarize the sources in at most {sentences} sentences{', as bullet points' if bullets else ''}."


def summary_sentences(question: str) -> int | None:
    """The sentence count of a `summary_question`; None for any other question."""
    found = _SUMMARY.match(question.strip())
    return int(found.group(1)) if found else None
