"""Split extracted text into overlapping chunks on sentence boundaries, with exact offsets.

Invariant (tested for every chunk): `text[chunk.char_start:chunk.char_end] == chunk.text`.
Sizes are counted in words, a cheap pure-Python proxy for model tokens (~1.3 tokens per English
word), keeping chunks well inside the embedding model's 256-token training window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_WORDS = 160
DEFAULT_OVERLAP_WORDS = 30

_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"')\]]*(?=\s)|\n\s*\n|$)", re.S)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    char_start: int
    char_end: int


def _spans(text: str, max_words: int) -> list[tuple[int, int, int]]:
    """(start, end, words) per sentence; over-long sentences are cut into word windows."""
    spans: list[tuple[int, int, int]] = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while end > start and text[end - 1].isspace():
            end -= 1
        words = list(_WORD.finditer(text, start, end))
        if not words:
            continue
        for i in range(0, len(words), max_words):
            piece = words[i : i + max_words]
            spans.append((piece[0].start(), piece[-1].end(), len(piece)))
    return spans


def chunk_text(
    text: str, max_words: int = DEFAULT_MAX_WORDS, overlap_words: int = DEFAULT_OVERLAP_WORDS
) -> list[Chunk]:
    if max_words < 1 or not 0 <= overlap_words < max_words:
        raise ValueError("need max_words >= 1 and 0 <= overlap_words < max_words")
    spans = _spans(text, max_words)
    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j, words = i, 0
        while j < len(spans) and (words + spans[j][2] <= max_words or j == i):
            words += spans[j][2]
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        chunks.append(Chunk(len(chunks), text[start:end], start, end))
        if j >= len(spans):
            break
        # Step back whole sentences for overlap, but always advance at least one sentence.
        back, carried = j, 0
        while back - 1 > i and carried + spans[back - 1][2] <= overlap_words:
            back -= 1
            carried += spans[back][2]
        i = back
    return chunks
