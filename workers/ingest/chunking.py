"""Split extracted text into overlapping chunks on sentence boundaries, with exact offsets.

Sizes are in the embedding model's own WordPiece tokens (`kernel.domain.wordpiece`). The default
(200 tokens + 40 overlap) fits all-MiniLM-L6-v2's 256-token window and bge-small's 512 with
room for [CLS]/[SEP]; tenants can change both.

Every chunk is bounded twice: by tokens (the model's window) and by characters, because one
token can be arbitrarily long (a word over 100 characters is a single [UNK]) and a chunk is a
D1 row. Text no whitespace or sentence end can split is cut by characters. Runs of
base64/hex-like characters of ENCODED_RUN_CHARS or more (an inlined image, a key) are encoded
data, not prose: they stay in the extracted text but no chunk carries them.

Invariants (tested for every chunk): `text[chunk.char_start:chunk.char_end] == chunk.text`,
`chunk.tokens == count_tokens(chunk.text) <= max_tokens` (unless one character alone is more)
and `len(chunk.text) <= max_chars`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernel.domain.wordpiece import count_tokens

DEFAULT_MAX_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
MODEL_WINDOW_TOKENS = 254  # 256 minus [CLS] and [SEP]
# ≤ 32 KB of UTF-8 per chunk row, far below D1's 2 MB; 5x what 254 tokens of prose take.
MAX_CHUNK_CHARS = 8_000
ENCODED_RUN_CHARS = 256

# A sentence ends at . ! ? (plus closing quotes/brackets) before whitespace, or at a blank line.
_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"'”’)\]]*(?=\s)|\n[ \t]*\n|$)", re.S)
_WORD = re.compile(r"\S+")
_ENCODED = re.compile(rf"[A-Za-z0-9+/=_-]{{{ENCODED_RUN_CHARS},}}")
_GAP = re.compile(r"\s+")


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


def _segments(text: str) -> list[tuple[int, int]]:
    """The stretches of `text` between encoded-data runs."""
    out, pos = [], 0
    for run in _ENCODED.finditer(text):
        out.append((pos, run.start()))
        pos = run.end()
    out.append((pos, len(text)))
    return out


def _cut(text: str, start: int, end: int, max_tokens: int, max_chars: int) -> list[_Span]:
    """Cut a stretch with no whitespace by characters into windows within both bounds."""
    spans: list[_Span] = []
    guess = max_chars
    while start < end:
        stop = min(end, start + guess)
        tokens = count_tokens(text[start:stop])
        while tokens > max_tokens and stop - start > 1:
            # Shrink in proportion: tokens per character is roughly even inside one word.
            stop = start + max(1, (stop - start) * max_tokens // (tokens + 1))
            tokens = count_tokens(text[start:stop])
        spans.append(_Span(start, stop, tokens))
        guess = min(max_chars, 2 * (stop - start))
        start = stop
    return spans


def _sentence_spans(text: str, max_tokens: int, max_chars: int) -> list[_Span]:
    """One span per sentence; a sentence over either bound is cut into word windows."""
    spans: list[_Span] = []
    for seg_start, seg_end in _segments(text):
        for match in _SENTENCE.finditer(text, seg_start, seg_end):
            start, end = match.start(), match.end()
            while end > start and text[end - 1].isspace():
                end -= 1
            if end <= start:
                continue
            if end - start <= max_chars:
                tokens = count_tokens(text[start:end])
                if tokens <= max_tokens:
                    spans.append(_Span(start, end, tokens))
                    continue
            spans += _word_windows(text, start, end, max_tokens, max_chars)
    return spans


def _word_windows(text: str, start: int, end: int, max_tokens: int, max_chars: int) -> list[_Span]:
    spans: list[_Span] = []
    piece_start, piece_tokens, last_end = -1, 0, start
    for word in _WORD.finditer(text, start, end):
        word_tokens = count_tokens(word.group())
        if word_tokens > max_tokens or word.end() - word.start() > max_chars:
            if piece_start >= 0:
                spans.append(_Span(piece_start, last_end, piece_tokens))
                piece_start, piece_tokens = -1, 0
            spans += _cut(text, word.start(), word.end(), max_tokens, max_chars)
            continue
        if piece_start >= 0 and (
            piece_tokens + word_tokens > max_tokens or word.end() - piece_start > max_chars
        ):
            spans.append(_Span(piece_start, last_end, piece_tokens))
            piece_start, piece_tokens = -1, 0
        if piece_start < 0:
            piece_start = word.start()
        piece_tokens += word_tokens
        last_end = word.end()
    if piece_start >= 0:
        spans.append(_Span(piece_start, last_end, piece_tokens))
    return spans


def _joinable(text: str, left: _Span, right: _Span) -> bool:
    """Only whitespace may lie between spans of one chunk: then their tokens simply add up.

    Windows cut out of one word touch (joined, they would tokenize differently), and an
    encoded-data run between two spans must not ride along inside a chunk.
    """
    return _GAP.fullmatch(text, left.end, right.start) is not None


def chunk_text(
    text: str,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    max_chars: int = MAX_CHUNK_CHARS,
) -> list[Chunk]:
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens or max_chars < 1:
        raise ValueError("need max_tokens >= 1, 0 <= overlap_tokens < max_tokens, max_chars >= 1")
    spans = _sentence_spans(text, max_tokens, max_chars)
    chunks: list[Chunk] = []
    i = 0
    while i < len(spans):
        j, tokens = i + 1, spans[i].tokens
        while (
            j < len(spans)
            and tokens + spans[j].tokens <= max_tokens
            and spans[j].end - spans[i].start <= max_chars
            and _joinable(text, spans[j - 1], spans[j])
        ):
            tokens += spans[j].tokens
            j += 1
        start, end = spans[i].start, spans[j - 1].end
        chunks.append(Chunk(len(chunks), text[start:end], start, end, tokens))
        if j >= len(spans):
            break
        # Step back whole sentences for the overlap, but always advance at least one sentence.
        back, carried = j, 0
        while (
            back - 1 > i
            and carried + spans[back - 1].tokens <= overlap_tokens
            and _joinable(text, spans[back - 1], spans[back])
            and spans[j].end - spans[back - 1].start <= max_chars
        ):
            back -= 1
            carried += spans[back].tokens
        i = back
    return chunks
