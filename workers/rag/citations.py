"""From a model's answer with [n] markers to verified citations with exact source offsets.

Each answer sentence carries the markers of the sources it claims to come from. For each marker
the claim is located in the cited chunk: verbatim if the model quoted, otherwise the chunk's
sentence with the highest word overlap (when it is high enough). A structured claim brings its
own quote, which must be in the chunk and must support the claim. Every located quote is then
checked against the stored chunk text re-read from D1; anything that does not match exactly is
dropped (and counted), and a sentence left without a verified citation is dropped with it. A
quote from a sentence that instructs the model (rag.directives) is never evidence.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kernel.contracts.api import Citation, SearchHit
from rag.directives import addresses_the_model, sentence_around, sentence_span
from rag.keyword import STOPWORDS

# (document id, version) → sorted (char_start, page) of its pages near the cited chunks.
PageStarts = Mapping[tuple[str, int], Sequence[tuple[int, int]]]
MIN_OVERLAP = 0.5  # share of the claim's content words that the quoted sentence must contain
_MARKER = re.compile(r"\s*\[(\d{1,2})\]")
_TRAILING_MARKERS = re.compile(r"([.!?][\"')]*)((?:\s*\[\d{1,2}\])+)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]*\s+|\n+")
_SOURCE_SENTENCE = re.compile(r"\S.*?(?:[.!?][\"')\]]*(?=\s)|\n|$)", re.S)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence without its markers
    sources: tuple[int, ...]  # cited source numbers, in order
    # A structured answer's verbatim quote from its (single) source: located in the source as
    # written (case and whitespace aside), and the sentence must be supported by it.
    quote: str | None = None


def from_structured(text: str, source: int, quote: str) -> Claim:
    """A structured claim; markers the model left in its text are not citations here."""
    return Claim(text=_MARKER.sub("", text).strip(), sources=(source,), quote=quote)


@dataclass(frozen=True)
class Located:
    source: int
    offset: int  # into the cited chunk's text
    quote: str


def split_claims(answer: str) -> list[Claim]:
    claims: list[Claim] = []
    # Markers after a sentence's punctuation belong to it: "Lift exists. [2] Drag…" is read as
    # "Lift exists [2]. Drag…" so that sentences split on their punctuation.
    normalised = _TRAILING_MARKERS.sub(lambda m: m.group(2) + m.group(1), answer.strip())
    for sentence in _SENTENCE_END.split(normalised):
        sources = tuple(int(m) for m in _MARKER.findall(sentence))
        text = _MARKER.sub("", sentence).strip()
        if text:
            claims.append(Claim(text=text, sources=tuple(dict.fromkeys(sources))))
    return claims


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def locate(claim: str, source_text: str) -> tuple[int, str] | None:
    """Where the claim sits in the source: (offset, quote) or None if the source lacks it."""
    stripped = claim.strip().rstrip(".!?")
    if stripped and (index := source_text.find(stripped)) >= 0:
        end = index + len(stripped)
        while end < len(source_text) and source_text[end] in ".!?":
            end += 1  # keep the sentence's own punctuation in the quote
        return index, source_text[index:end]
    words = _content_words(claim)
    if not words:
        return None
    best: tuple[float, int, str] | None = None
    for match in _SOURCE_SENTENCE.finditer(source_text):
        sentence = match.group().rstrip()
        overlap = len(words & _content_words(sentence)) / len(words)
        if best is None or overlap > best[0]:
            best = (overlap, match.start(), sentence)
    if best is None or best[0] < MIN_OVERLAP:
        return None
    return best[1], best[2]


def locate_quote(claim: str, quote: str, source_text: str) -> tuple[int, str] | None:
    """Where a structured claim's quote sits in the source — (offset, the source's own
    characters) — or None when the source does not contain it or it does not support the claim.

    Support is word overlap, as for marker claims: the quote must hold MIN_OVERLAP of the
    claim's content words. A quote too short for that (models often quote a phrase of the
    sentence they paraphrase) is widened to its sentence, and the sentence is cited if it does;
    a claim saying more than its sentence is dropped."""
    words = quote.split()
    if not words:
        return None
    pattern = r"\s+".join(re.escape(w) for w in words)
    match = re.search(pattern, source_text, re.IGNORECASE)
    if match is None:
        return None
    claimed = _content_words(claim)
    if not claimed:
        return None
    if _supports(claimed, match.group()):
        return match.start(), match.group()
    start, end = sentence_span(source_text, match.start(), match.end())
    sentence = source_text[start:end].rstrip()
    return (start, sentence) if _supports(claimed, sentence) else None


def _supports(claimed: set[str], passage: str) -> bool:
    return len(claimed & _content_words(passage)) / len(claimed) >= MIN_OVERLAP


def page_at(starts: Sequence[tuple[int, int]], offset: int, fallback: int | None) -> int | None:
    """The page holding `offset`: the last page starting at or before it (`starts` sorted
    (char_start, page)); `fallback` (the chunk's first page) when no span is stored."""
    at = bisect_right(starts, (offset, sys.maxsize)) - 1
    return starts[at][1] if at >= 0 else fallback


class Verifier:
    """Claims checked one at a time, with citation numbers shared across them — so a stream can
    release each sentence as soon as it is verified (rag.live) and a whole answer is the same
    loop (build_citations).

    `stored` maps chunk id → chunk text re-read from D1 for the live version; a quote must match
    it exactly at its offset to survive. `pages` holds the page starts of the cited versions
    (rag.answer.page_starts), so a citation names the page of its quote, not of its chunk.
    """

    def __init__(
        self, hits: list[SearchHit], stored: dict[str, str], pages: PageStarts | None = None
    ) -> None:
        self.hits, self.stored, self.pages = hits, stored, pages or {}
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[str, int], int] = {}
        self.seen = self.dropped = 0

    def verify(self, claim: Claim) -> tuple[str | None, list[Citation]]:
        """(the sentence with its renumbered markers, or None when no citation survived; the
        citations this claim added)."""
        kept: list[int] = []
        new: list[Citation] = []
        for source in claim.sources:
            self.seen += 1
            citation = self._locate(claim, source)
            if citation is None:
                self.dropped += 1
                continue
            if citation.n > len(self.citations):
                self.citations.append(citation)
                new.append(citation)
            if citation.n not in kept:
                kept.append(citation.n)
        if not kept:
            return None, new
        return claim.text + "".join(f" [{n}]" for n in kept), new

    def _locate(self, claim: Claim, source: int) -> Citation | None:
        if not 1 <= source <= len(self.hits):
            return None  # an invented source number
        hit = self.hits[source - 1]
        located = (
            locate(claim.text, hit.text)
            if claim.quote is None
            else locate_quote(claim.text, claim.quote, hit.text)
        )
        if located is None:
            return None
        offset, quote = located
        if addresses_the_model(sentence_around(hit.text, offset, offset + len(quote))):
            return None  # an instruction to the model is not evidence, even quoted verbatim
        truth = self.stored.get(hit.chunk_id)
        if truth is None or truth[offset : offset + len(quote)] != quote:
            return None  # the stored source does not say this, or changed meanwhile
        key = (hit.chunk_id, offset)
        if key in self._numbers:
            return self.citations[self._numbers[key] - 1]
        self._numbers[key] = len(self.citations) + 1
        start, end = hit.char_start + offset, hit.char_start + offset + len(quote)
        starts = self.pages.get((hit.document_id, hit.version), [])
        return Citation(
            n=self._numbers[key],
            document_id=hit.document_id,
            chunk_id=hit.chunk_id,
            title=hit.title,
            version=hit.version,
            page=page_at(starts, start, hit.page),
            page_end=page_at(starts, max(start, end - 1), hit.page),
            char_start=start,
            char_end=end,
            quote=quote,
        )


def build_citations(
    claims: list[Claim],
    hits: list[SearchHit],
    stored: dict[str, str],
    pages: PageStarts | None = None,
) -> tuple[str, list[Citation], int, int]:
    """(answer text, citations, markers seen, markers dropped) of a whole answer."""
    verifier = Verifier(hits, stored, pages)
    sentences = [text for claim in claims if (text := verifier.verify(claim)[0]) is not None]
    return " ".join(sentences), verifier.citations, verifier.seen, verifier.dropped


def complete_prefix(text: str) -> tuple[str, str]:
    """Split streamed text into (complete sentences, the rest still arriving).

    A sentence is complete when its end punctuation is followed by its markers and a space
    ("… light. [1] "), or its markers come before the punctuation ("… light [1]. "), or more
    text follows ("… light. Drag") — so a sentence with its citation is released without
    waiting for the next one, and one without markers waits in case they follow. A marker that
    arrives later, after that cut, goes with the next sentence, where the verifier checks it
    like any other (it can only be dropped, never shown unverified)."""
    cut = 0
    for match in _STREAM_BOUNDARY.finditer(text):
        cut = match.end()
    return text[:cut], text[cut:]


_STREAM_BOUNDARY = re.compile(
    r"[.!?][\"')]*(?:(?:\s*\[\d{1,2}\])+\s|\s+(?=[^\s\[]))"
    r"|\]\s*[.!?][\"')]*\s"
    r"|\n+(?=\S)"
)
