"""Split extracted text into overlapping chunks on sentence boundaries, with exact offsets.

Sizes are in the embedding model's own WordPiece tokens (`kernel.wordpiece`). The default
(200 tokens + 40 overlap) fits all-MiniLM-L6-v2's 256-token window and bge-small's 512 with
room for [CLS]/[SEP]; tenants can change both.

Invariant (tested for every chunk): `text[chunk.char_start:chunk.char_end] == chunk.text`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernel.wordpiece import count_tokens

DEFAULT_MAX_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
MODEL_WINDOW_TOKENS = 254  # 256 minus [CLS] and [SEP]

# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace, or at a blank line.
_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"'”’)\]]*(?=\s)|\n[ \t]*\n|$)", re.S)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    position: int
    text: str
    char_start: int
    char_end: int
    tokens: int


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


def _sentence_spans(text: str, max_tokens: int) -> list[_Span]:
    """One span per sentence; a sentence longer than max_tokens is cut into word windows."""
    spans: list[_Span] = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while end > start and text[end - 1].isspace():
            end -= 1
        if end <= start:
            continue
        tokens = count_tokens(text[start:end])
        if tokens <= max_tokens:
            spans.append(_Span(start, end, tokens))
            continue
        piece_start, piece_tokens, last_end = -1, 0, start
        for word in _WORD.finditer(text, start, end):
            word_tokens = count_tokens(word.group())
            if piece_start >= 0 and piece_tokens + word_tokens > max_tokens:
                spans.append(_Span(piece_start, last_end, piece_tokens))
                piece_start, piece_tokens = -1, 0
            if piece_start < 0:
                piece_start = word.start()
            piece_tokens += word_tokens
            last_end = word.end()
        if piece_start >= 0:
            spans.append(_Span(piece_start, last_end, piece_tokens))
    return spans


def chunk_text(
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    spans = _sentence_spans(text, max_tokens)
    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j, tokens = i, 0
        while j < len(spans) and (tokens + spans[j].tokens <= max_tokens or j == i):
            tokens += spans[j].tokens
            j += 1
        start, end = spans[i].start, spans[j - 1].end
        chunks.append(Chunk(len(chunks), text[start:end], start, end, tokens))
        if j >= len(spans):
            break
        # Step back whole sentences for the overlap, but always advance at least one sentence.
        back, carried = j, 0
        while back - 1 > i and carried + spans[back - 1].tokens <= overlap_tokens:
            back -= 1
            carried += spans[back].tokens
        i = back
    return chunks
