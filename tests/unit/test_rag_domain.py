"""rag.answer, rag.citations and rag.chat: the pure parts, driven without a model or a mesh."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kernel.contracts.api import Citation, SearchHit
from kernel.contracts.rag import TokenEvent
from kernel.domain.prompt_format import ABSTAIN_TEXT
from kernel.domain.tenancy import TenantDB, TenantScope
from rag import answer, chat, citations, live

TENANT = "t_" + "a" * 24


def hit(n: int, text: str, rerank: float | None = None, **extra: Any) -> SearchHit:
    fields: dict[str, Any] = {
        "document_id": f"d_{n:024x}",
        "version": 1,
        "title": f"Doc {n}",
        "heading_path": [],
        "chunk_id": f"c_{n}",
        "text": text,
        "score": 1.0 / n,
        "rerank_score": rerank,
        "char_start": 100,
        "char_end": 100 + len(text),
        **extra,
    }
    return SearchHit(**fields)


# --- rag.answer: confidence = 0.3·relevance + 0.1·margin + 0.2·verified + 0.4·support -----
ASKED = "Which light does chlorophyll absorb?"  # content words: light, chlorophyll, absorb
QUOTES = ["Chlorophyll takes in red light."]  # holds light and chlorophyll: support 2/3


def raw(hits: list[SearchHit], seen: int, dropped: int, quotes: list[str] = QUOTES) -> float:
    committed = answer.CALIBRATION
    answer.CALIBRATION = None
    try:
        return answer.confidence(hits, seen, dropped, ASKED, quotes)
    finally:
        answer.CALIBRATION = committed


def test_confidence_formula_exact_values() -> None:
    hits = [hit(1, "a", 0.9), hit(2, "b", 0.5), hit(3, "c", 0.3), hit(4, "d", 0.1), hit(5, "e", 0)]
    # relevance 0.9; margin 0.9 - mean(0.5, 0.3, 0.1) = 0.6; verified (4 - 1) / 4; support 2/3
    assert raw(hits, seen=4, dropped=1) == round(
        0.3 * 0.9 + 0.1 * 0.6 + 0.2 * 0.75 + 0.4 * 2 / 3, 3
    )
    assert raw([hit(1, "a", 0.8)], seen=2, dropped=0) == round(
        0.3 * 0.8 + 0.1 * 0.8 + 0.2 + 0.4 * 2 / 3, 3
    )  # one hit: the margin is its whole score


def test_confidence_is_zero_without_evidence_and_bounded_by_one() -> None:
    assert raw([], seen=0, dropped=0) == 0.0
    assert raw([hit(1, "a", 0.9)], seen=3, dropped=3) == 0.0  # nothing verified
    full = ["Chlorophyll absorbs light."]
    assert raw([hit(1, "a", 1.0)], seen=1, dropped=0, quotes=full) == 1.0


def test_confidence_grows_with_relevance_margin_coverage_and_support() -> None:
    def conf(top: float, second: float, dropped: int, quotes: list[str] = QUOTES) -> float:
        return raw([hit(1, "a", top), hit(2, "b", second)], 4, dropped, quotes)

    assert conf(0.9, 0.2, 0) > conf(0.7, 0.2, 0)  # relevance
    assert conf(0.9, 0.2, 0) > conf(0.9, 0.6, 0)  # margin over the runners-up
    assert conf(0.9, 0.2, 0) > conf(0.9, 0.2, 2)  # dropped citations cost confidence
    assert conf(0.9, 0.2, 0) > conf(0.9, 0.2, 0, ["Leaves are green."])  # off the question


def test_the_committed_calibration_is_increasing_and_bounded() -> None:
    if answer.CALIBRATION is None:
        pytest.skip("no calibration committed")
    a, _ = answer.CALIBRATION
    assert a > 0  # a higher raw score never means a lower confidence
    hits = [hit(1, "a", 0.9), hit(2, "b", 0.2)]
    low = answer.confidence(hits, 4, 3, ASKED, ["Leaves are green."])
    high = answer.confidence(hits, 4, 0, ASKED, ["Chlorophyll absorbs light."])
    assert 0.0 < low < high < 1.0


def test_abstention_says_exactly_the_abstain_sentence() -> None:
    response = answer.abstention()
    assert response.answer == ABSTAIN_TEXT and response.abstained and response.citations == []
    assert response.confidence == 0.0 and response.usage["total_tokens"] == 0


def test_within_budget_keeps_the_first_hit_and_stops_at_the_budget() -> None:
    long = " ".join(["photosynthesis"] * 50)
    hits = [hit(1, long), hit(2, "short text"), hit(3, long)]
    assert [h.chunk_id for h in answer.within_budget(hits, budget=10)] == ["c_1"]  # never empty
    kept = answer.within_budget(hits, budget=10_000)
    assert [h.chunk_id for h in kept] == ["c_1", "c_2", "c_3"]


def test_follow_ups_point_at_uncited_material_not_the_question() -> None:
    hits = [
        hit(1, "x", heading_path=["Light reactions"]),
        hit(2, "y", heading_path=["Calvin cycle"]),
        hit(3, "z", heading_path=["Calvin cycle"]),
        hit(4, "w"),
    ]
    out = answer.follow_ups("What happens in the light reactions?", hits, cited={"c_2"})
    assert out == ["What does “Doc 3” say about Calvin cycle?", "What else does “Doc 4” cover?"]


# --- rag.citations ----------------------------------------------------------------------
def test_split_claims_moves_trailing_markers_onto_their_sentence() -> None:
    claims = citations.split_claims("Lift exists. [2] Drag opposes motion [1][3]. No source here.")
    assert [(c.text, c.sources) for c in claims] == [
        ("Lift exists.", (2,)),
        ("Drag opposes motion.", (1, 3)),
        ("No source here.", ()),
    ]


def test_locate_prefers_the_verbatim_quote_then_the_best_overlapping_sentence() -> None:
    source = "Plants use light. Chlorophyll absorbs red and blue light! Roots take water."
    assert citations.locate("Chlorophyll absorbs red and blue light", source) == (
        18,
        "Chlorophyll absorbs red and blue light!",
    )
    offset, quote = citations.locate("chlorophyll absorbs blue light strongly", source) or (0, "")
    assert quote == "Chlorophyll absorbs red and blue light!" and source[offset:].startswith(quote)
    assert citations.locate("Mitochondria make ATP", source) is None


def test_page_at_is_the_last_page_starting_at_or_before_the_offset() -> None:
    starts = [(0, 1), (500, 2), (900, 3)]
    assert [citations.page_at(starts, o, 7) for o in (0, 499, 500, 950)] == [1, 1, 2, 3]
    assert citations.page_at([], 10, 7) == 7


def test_build_citations_keeps_only_quotes_the_stored_text_still_says() -> None:
    text = "Chlorophyll absorbs red light. Plants release oxygen."
    hits = [hit(1, text), hit(2, "Unrelated words about rivers.")]
    claims = citations.split_claims(
        "Chlorophyll absorbs red light. [1] Plants release oxygen. [2] Invented [7]."
    )
    out, cites, seen, dropped = citations.build_citations(claims, hits, {"c_1": text, "c_2": ""})
    assert out == "Chlorophyll absorbs red light. [1]"
    assert (seen, dropped) == (3, 2)  # [2] is not in source 2; [7] does not exist
    (only,) = cites
    assert (only.char_start, only.char_end) == (100, 100 + len("Chlorophyll absorbs red light."))
    # The stored chunk changed since retrieval: the quote no longer stands.
    _, none, _, dropped = citations.build_citations(claims[:1], hits, {"c_1": "changed"})
    assert none == [] and dropped == 1


# --- rag.chat ---------------------------------------------------------------------------
def test_follow_ups_carry_the_previous_question_only_when_they_lean_on_it() -> None:
    history = [{"role": "user", "content": "How do plants make sugar?"}, {"role": "assistant"}]
    assert chat.rewrite_follow_up("Why is it green?", history) == (
        "How do plants make sugar? Why is it green?"
    )
    standalone = "Which gas do leaves release during photosynthesis?"
    assert chat.rewrite_follow_up(standalone, history) == standalone
    assert chat.rewrite_follow_up("And then?", []) == "And then?"


def test_sse_frames_are_named_events_with_compact_json() -> None:
    assert chat.sse("token", TokenEvent(text="Hi ")) == b'event: token\ndata: {"text":"Hi "}\n\n'
    with pytest.raises(TypeError):  # each event name has its one contract model
        chat.sse("done", TokenEvent(text="Hi "))


def _db() -> TenantDB:
    return TenantDB(object(), TenantScope(TENANT))  # type: ignore[arg-type]


def test_session_sql_is_scoped_to_the_tenant_and_the_owner() -> None:
    db = _db()
    for stmt in (
        chat.select_session(db, "s_1", "u_1"),
        chat.select_sessions(db, "u_1"),
        *chat.delete_session(db, "s_1", "u_1"),
    ):
        assert "tenant_id = ?1" in stmt.sql and stmt.params[0] == TENANT
    assert "owner_id" in chat.select_session(db, "s_1", "u_1").sql
    assert "u_1" in chat.select_session(db, "s_1", "u_1").params


def test_decode_message_parses_its_json_columns() -> None:
    row = {"role": "assistant", "content": "x", "citations": "[]", "meta": json.dumps({"a": 1})}
    decoded = chat.decode_message(row)
    assert decoded["citations"] == [] and decoded["meta"] == {"a": 1}


class _RecordingDB:
    """Collects what the stream writes, like D1 would receive it."""

    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.batches: list[Any] = []

    async def execute(self, sql: str, params: Any) -> Any:
        self.runs.append((sql, params))

    async def batch(self, statements: Any) -> Any:
        self.batches.append(statements)
        return []


async def test_stream_answer_sends_tokens_citations_done_and_stores_what_was_sent() -> None:
    raw = _RecordingDB()
    db = TenantDB(raw, TenantScope(TENANT))  # type: ignore[arg-type]
    cite = Citation(
        n=1,
        document_id="d_" + "1" * 24,
        chunk_id="c_1",
        title="Doc",
        version=1,
        page=None,
        page_end=None,
        char_start=0,
        char_end=10,
        quote="Leaves are green.",
    )
    items: list[live.Item] = [
        live.Spent(40),
        live.Sentence("Leaves are green. [1]", [cite]),
        live.Sentence("They hold chlorophyll. [1]", []),  # cites [1] again: no new citation
        live.Spent(52),
        live.Finished(
            {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}, 0.8, False, [], None
        ),
    ]
    frames = [
        f async for f in chat.stream_answer(db, "s_1", _items(items), {"retrieval_query": "q"})
    ]
    events = [f.decode().split("\n")[0].removeprefix("event: ") for f in frames]
    assert events[-1] == "done" and events.count("citation") == 1 and "token" in events
    assert events.count("usage") == 2  # for the gateway's budget, which removes them
    text = "".join(
        json.loads(f.decode().split("data: ", 1)[1])["text"] for f in frames if b"token" in f[:12]
    )
    answer_text = "Leaves are green. [1] They hold chlorophyll. [1]"
    assert text.strip() == answer_text
    (stored,) = raw.batches
    assert stored[0].params[2] == answer_text  # what the client got is what is kept
    assert stored[0].params[3] == "complete"


async def _items(items: list[live.Item]) -> AsyncIterator[live.Item]:
    for item in items:
        yield item


@pytest.mark.parametrize("stop_after", [1, 3])
async def test_a_client_leaving_mid_stream_stores_a_partial_message(stop_after: int) -> None:
    raw = _RecordingDB()
    db = TenantDB(raw, TenantScope(TENANT))  # type: ignore[arg-type]
    items: list[live.Item] = [
        live.Sentence("I don't have this information in the documents.", []),
        live.Finished(dict(live.ZERO), 0.0, True, [], None),
    ]
    stream = chat.stream_answer(db, "s_1", _items(items), {})
    for _ in range(stop_after):
        await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    (stored,) = raw.batches
    assert "partial" in stored[0].params
