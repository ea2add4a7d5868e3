from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import _ENCODED as ENCODED
from ingest.chunking import chunk_text
from kernel.domain.wordpiece import count_tokens

TEXT = (
    "Photosynthesis converts light into chemical energy. It happens in chloroplasts!\n\n"
    "Mitochondria release that energy. Is that all? No: cells also store it as ATP. " * 40
)


def test_offsets_are_exact_and_chunks_overlap() -> None:
    chunks = chunk_text(TEXT, max_tokens=60, overlap_tokens=15)
    assert len(chunks) > 5
    for chunk in chunks:
        assert TEXT[chunk.char_start : chunk.char_end] == chunk.text
        assert count_tokens(chunk.text) <= 60 and chunk.tokens <= 60
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end, "consecutive chunks overlap"
        assert after.char_start > before.char_start, "chunking always advances"
    assert chunks[0].char_start == 0
    assert chunks[-1].char_end == len(TEXT.rstrip())


def test_chunks_start_on_sentence_boundaries() -> None:
    for chunk in chunk_text(TEXT, max_tokens=50, overlap_tokens=12):
        assert chunk.text[0].isupper(), chunk.text[:30]


def test_overlong_sentence_is_split_by_words() -> None:
    text = " ".join(["word"] * 1000)
    chunks = chunk_text(text, max_tokens=100, overlap_tokens=0)
    assert len(chunks) == 10
    assert all(text[c.char_start : c.char_end] == c.text for c in chunks)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=3000),
    st.integers(1, 60),
    st.integers(0, 59),
)
def test_offsets_hold_for_any_text(text: str, max_tokens: int, overlap: int) -> None:
    overlap = min(overlap, max_tokens - 1)
    chunks = chunk_text(text, max_tokens=max_tokens, overlap_tokens=overlap)
    covered: set[int] = set()
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text.strip() == chunk.text
        covered.update(range(chunk.char_start, chunk.char_end))
    # Every non-space character lands in some chunk: nothing is silently dropped (except runs
    # of encoded data, which by design are kept in the text but not indexed).
    encoded = {i for m in ENCODED.finditer(text) for i in range(m.start(), m.end())}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace() and i not in encoded)
