"""Exact token counts for the embedding model, in pure Python (runs in Pyodide).

A faithful port of the BERT uncased tokenizer used by @cf/baai/bge-small-en-v1.5 and the local
all-MiniLM-L6-v2 (HF `BertNormalizer` + `BertPreTokenizer` + `WordPiece`), so chunk sizes are
measured in the tokens the model actually sees. A test compares it with `tokenizers`.
"""

from __future__ import annotations

import base64
import re
import unicodedata
import zlib
from functools import lru_cache

MAX_CHARS_PER_WORD = 100


@lru_cache(maxsize=1)
def _vocab() -> frozenset[str]:
    from kernel.domain.wordpiece_vocab import PACKED

    return frozenset(
        zlib.decompress(base64.b85decode("".join(PACKED))).decode("utf-8").splitlines()
    )


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    # HF counts every "Other" category as control: Cc, Cf, Cs, Co and unassigned Cn.
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B920 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _normalize(text: str) -> str:
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if ch.isspace() or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    # lowercase=True and strip_accents unset → accents are stripped too, before lowercasing
    # (HF semantics and order).
    decomposed = unicodedata.normalize("NFD", "".join(out))
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn").lower()


def _words(text: str) -> list[str]:
    words: list[str] = []
    for piece in text.split():
        current: list[str] = []
        for ch in piece:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


@lru_cache(maxsize=65536)
def _word_tokens(word: str) -> int:
    if len(word) > MAX_CHARS_PER_WORD:
        return 1  # [UNK]
    vocab = _vocab()
    count, start = 0, 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return 1  # no piece matches: the whole word is one [UNK]
        count += 1
        start = end
    return count


# ASCII fast path (most school text): every printable non-alphanumeric ASCII character is BERT
# punctuation, control characters are dropped, and there are no accents or CJK to handle.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _ascii_words(text: str) -> list[str]:
    return _ASCII_WORDS.findall(_ASCII_CONTROL.sub("", text).lower())


def count_tokens(text: str) -> int:
    """Tokens the model sees for `text`, excluding [CLS]/[SEP]."""
    words = _ascii_words(text) if text.isascii() else _words(_normalize(text))
    return sum(_word_tokens(word) for word in words)
