"""The PDF extractor on real files from Debian documentation packages (tests/fixtures/pdfs).

Expected text is poppler's `pdftotext` output, committed next to each PDF; words are compared
with the same normalization as `make bench-pdf` (bench/pdf_compare.py). Each threshold is what
the current extractor measured minus a small margin, so whichever implementation sits behind
`extract_pdf` later is held to the same real files.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bench.pdf_compare import lcs_length, words
from ingest.extract.pdf import extract_pdf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs"

# file: (min word recall, min word precision). Measured with the hand-written parser:
# anysize .994/.997, camlidl .996/.998, fancyref .978/.992, rcs-conf .992/.996, sides 1/1,
# test-welsh 1/1.
THRESHOLDS = {
    "anysize.pdf": (0.97, 0.97),
    "camlidl-1.04.doc.pdf": (0.97, 0.97),
    "fancyref.pdf": (0.95, 0.97),
    "rcs-conf.pdf": (0.97, 0.97),
    "sides-sample.pdf": (0.98, 0.98),
    "test-welsh.pdf": (0.98, 0.98),
}


def expected_pages(pdf: Path) -> list[str]:
    pages = pdf.with_suffix(".txt").read_text(encoding="utf-8").split("\f")
    if pages and not pages[-1].strip():
        pages.pop()  # pdftotext ends every page with a form feed
    return pages


def test_every_fixture_has_a_threshold_and_expected_text() -> None:
    pdfs = sorted(p.name for p in FIXTURES.glob("*.pdf"))
    assert pdfs == sorted(THRESHOLDS)
    for name in pdfs:
        assert (FIXTURES / name).with_suffix(".txt").is_file()
        assert (FIXTURES / name).stat().st_size < 200_000


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_real_pdf_matches_pdftotext(name: str) -> None:
    pdf = FIXTURES / name
    want = expected_pages(pdf)
    got = extract_pdf(pdf.read_bytes())

    assert len(got.pages) == len(want), "one page span per PDF page"
    page_texts = [got.text[p.char_start : p.char_end] for p in got.pages]
    ref = Counter(w for page in want for w in words(page))
    hyp = Counter(w for page in page_texts for w in words(page))
    common = sum((ref & hyp).values())
    min_recall, min_precision = THRESHOLDS[name]
    assert common / sum(ref.values()) >= min_recall
    assert common / sum(hyp.values()) >= min_precision


def test_words_normalize_like_the_bench() -> None:
    text = "The ﬁrst exam-\n  ple, e.g. Ca\u00adfé — 3.14"
    assert words(text) == ["the", "first", "example", "e", "g", "café", "3", "14"]


def test_lcs_length_matches_dynamic_programming() -> None:
    def reference(a: list[int], b: list[int]) -> int:
        row = [0] * (len(b) + 1)
        for x in a:
            prev_diag = 0
            for j, y in enumerate(b):
                keep = row[j + 1]
                row[j + 1] = prev_diag + 1 if x == y else max(row[j + 1], row[j])
                prev_diag = keep
        return row[-1]

    rng = random.Random(7)
    for _ in range(300):
        a = [rng.randrange(5) for _ in range(rng.randrange(0, 70))]
        b = [rng.randrange(5) for _ in range(rng.randrange(0, 70))]
        assert lcs_length(a, b) == reference(a, b)
