"""Semantic sanity of the numpy MiniLM encoder and the pure-Python prompt format."""

from __future__ import annotations

import numpy as np
import pytest

from emulator.ai import generator
from emulator.ai.embeddings import MAX_WORDPIECES, MiniLMEncoder, shared_encoder
from kernel.domain.prompt_format import format_grounded_prompt, parse_grounded_prompt


@pytest.fixture(scope="session")
def enc() -> MiniLMEncoder:
    return shared_encoder()


@pytest.mark.slow
def test_paraphrases_are_closer_than_unrelated_sentences(enc: MiniLMEncoder) -> None:
    a, b, c = enc.encode(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The Treaty of Westphalia ended the Thirty Years' War.",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.3


@pytest.mark.slow
def test_deterministic_and_unit_norm(enc: MiniLMEncoder) -> None:
    texts = ["same input", "twice over"]
    first, second = enc.encode(texts), enc.encode(texts)
    assert np.array_equal(first, second)
    assert first.dtype == np.float32 and first.shape == (2, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_batch_equals_single(enc: MiniLMEncoder) -> None:
    texts = ["tiny", "a somewhat longer sentence about plant cells and light", "x " * 300]
    batch = enc.encode(texts)
    singles = np.stack([enc.encode([t])[0] for t in texts])
    assert np.allclose(batch, singles, atol=1e-5)


@pytest.mark.slow
def test_truncates_at_512_tokens(enc: MiniLMEncoder) -> None:
    head = "word " * MAX_WORDPIECES
    assert enc.count_tokens(head) == MAX_WORDPIECES
    same = enc.encode([head, head + "extra tail that is cut off"])
    assert np.allclose(same[0], same[1], atol=1e-6)


def test_count_tokens_counts_wordpieces_without_specials() -> None:
    enc = shared_encoder()
    assert enc.count_tokens("") == 0
    assert enc.count_tokens("hello world") == 2
    assert enc.count_tokens("unaffable") > 1  # split into wordpieces
    assert enc.count_tokens_batch(["hello world", ""]) == [2, 0]


def test_prompt_round_trip_with_multiline_and_marker_like_lines() -> None:
    sources = ["line one\nline two\n\nafter a blank line", "[3] looks like a marker\nok", "c"]
    prompt = format_grounded_prompt(sources, "What?")
    parsed = parse_grounded_prompt("Answer from the sources only.\n\n" + prompt)
    assert parsed is not None
    assert parsed.question == "What?"
    assert parsed.sources[0] == sources[0]
    assert parsed.sources[2] == "c"
    assert len(parsed.sources) == 3


def test_parse_rejects_messages_without_sources() -> None:
    assert parse_grounded_prompt("Hello, how are you?") is None
    assert parse_grounded_prompt("Question: what?") is None


def test_split_sentences_is_verbatim() -> None:
    text = (
        "It works. Does it? see e.g. Fig. 2 by J. Smith. all lower case . next one\n- a bullet\nEnd"
    )
    sentences = generator.split_sentences(text)
    assert sentences == [
        "It works.",
        "Does it?",
        "see e.g. Fig. 2 by J. Smith.",  # abbreviations and initials do not end a sentence
        "all lower case .",  # lower-case text after a stop is a new sentence (abstracts, OCR)
        "next one",
        "- a bullet",
        "End",
    ]
    assert all(s in text for s in sentences)
