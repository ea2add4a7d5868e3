"""Issue 9, defect 3: no chunk may outgrow D1's row limit or the model's window, whatever the text.

A single "word" (no whitespace) used to become one chunk however long it was: a 2.5 MB base64
line made a 2.5 MB chunk that D1 refused (SQLITE_TOOBIG), and the job stalled.
"""

from __future__ import annotations

import base64
import random

import pytest

from ingest.chunking import ENCODED_RUN_CHARS, MAX_CHUNK_CHARS, chunk_text
from kernel.bindings.limits import utf8_len
from kernel.bindings.ports import D1_MAX_ROW_BYTES
from kernel.domain.wordpiece import count_tokens


def assert_bounded(text: str, max_tokens: int, max_chars: int = MAX_CHUNK_CHARS) -> None:
    chunks = chunk_text(text, max_tokens=max_tokens, overlap_tokens=max_tokens // 5)
    assert chunks
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert len(chunk.text) <= max_chars, len(chunk.text)
        assert utf8_len(chunk.text) < D1_MAX_ROW_BYTES // 8
        assert chunk.tokens == count_tokens(chunk.text) <= max_tokens
    return None


def covered(text: str, max_tokens: int) -> set[int]:
    out: set[int] = set()
    for chunk in chunk_text(text, max_tokens=max_tokens, overlap_tokens=0):
        out.update(range(chunk.char_start, chunk.char_end))
    return out


def test_single_huge_token_that_tokens_cannot_split_is_cut_by_characters() -> None:
    # 300k letters with accents: one word the tokenizer counts as a single [UNK].
    text = "é" * 300_000
    assert count_tokens(text) == 1
    assert_bounded(text, max_tokens=200)
    assert covered(text, 200) == set(range(len(text))), "nothing dropped"


@pytest.mark.parametrize(
    "word",
    [
        "漢字" * 40_000,  # CJK: no spaces, one token per character
        "a." * 50_000,  # punctuation: every character is a token
        "ab,cd;" * 20_000,
    ],
    ids=["cjk", "punctuation", "mixed"],
)
def test_single_word_with_many_tokens_is_cut_to_fit_the_token_budget(word: str) -> None:
    text = f"Intro sentence. {word} Closing sentence."
    assert_bounded(text, max_tokens=200)
    spread = covered(text, 200)
    assert all(i in spread for i, ch in enumerate(text) if not ch.isspace())


def test_one_long_base64_line_keeps_the_prose_and_skips_the_encoded_run() -> None:
    blob = base64.b64encode(random.Random(3).randbytes(1_900_000)).decode()  # 2.5 MB
    text = f"# Notes\n\nOsmosis moves water across a membrane.\n\n{blob}\n\nDiffusion spreads particles.\n"
    chunks = chunk_text(text, max_tokens=200, overlap_tokens=40)
    assert_bounded(text, max_tokens=200)
    joined = " ".join(c.text for c in chunks)
    assert "Osmosis moves water" in joined and "Diffusion spreads particles." in joined
    start = text.index(blob)
    assert all(c.char_end <= start or c.char_start >= start + len(blob) for c in chunks), (
        "no chunk carries the encoded data"
    )
    assert len(chunks) <= 3


def test_short_encoded_looking_words_are_still_text() -> None:
    word = "A" * (ENCODED_RUN_CHARS - 1)
    text = f"The key is {word} today."
    chunks = chunk_text(text, max_tokens=200, overlap_tokens=0)
    assert [c.text for c in chunks] == [text]


def test_many_long_words_respect_the_character_bound() -> None:
    # 150-character words count as one [UNK] token each: tokens alone would allow ~1.2 MB.
    words = ["x" + "é" * 149 for _ in range(8_000)]
    assert_bounded(" ".join(words), max_tokens=200)


def test_a_batch_of_the_largest_chunks_fits_one_d1_statement() -> None:
    from ingest.store import insert_chunks
    from kernel.bindings.limits import check_d1_statement
    from kernel.domain.tenancy import TenantDB, TenantScope

    class NoDB:  # statements are built, never run
        pass

    db = TenantDB(NoDB(), TenantScope("t_" + "0" * 24))  # type: ignore[arg-type]
    widest = "😀" * MAX_CHUNK_CHARS  # 4 bytes per character
    rows = [(f"c{i}", widest, 200) for i in range(200)]
    for statement in insert_chunks(db, "d_x", rows):
        check_d1_statement(statement.sql, statement.params)
