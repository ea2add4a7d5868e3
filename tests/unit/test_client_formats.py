"""The pieces the OpenAI-compatible and AI SDK replies are made of: the Sources list, streamed
words that join into the JSON answer's text, and the endings the gateway writes per format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from gateway.metering import ended
from kernel.contracts import ai_sdk, openai
from kernel.contracts.api import Citation
from kernel.contracts.rag import ErrorEvent
from kernel.runtime import sse
from rag.conversation import words
from rag.references import MAX_QUOTE_CHARS, footer, where


def cite(n: int, quote: str, page: int | None = None, page_end: int | None = None) -> Citation:
    return Citation(
        n=n,
        document_id="d_1",
        chunk_id=f"c_{n}",
        title="Flight  notes",
        version=1,
        page=page,
        page_end=page_end,
        char_start=0,
        char_end=len(quote),
        quote=quote,
    )


def test_where_names_the_title_and_the_pages_of_the_quote() -> None:
    assert where(cite(1, "q")) == "Flight notes"
    assert where(cite(1, "q", page=2, page_end=2)) == "Flight notes, p. 2"
    assert where(cite(1, "q", page=3, page_end=4)) == "Flight notes, pp. 3–4"


def test_the_sources_list_is_one_markdown_line_per_citation() -> None:
    long = "Lift comes\nfrom the pressure difference " + "and more words " * 40
    listed = footer([cite(1, "Wings lift.", page=2), cite(2, long)])
    head, *lines = listed.split("\n\nSources:\n")[1].split("\n")
    assert listed.startswith("\n\nSources:\n") and not lines[1:]
    assert head == "- [1] Flight notes, p. 2 — “Wings lift.”"
    quoted = lines[0].split("“", 1)[1].removesuffix("”")
    assert MAX_QUOTE_CHARS - 2 <= len(quoted) <= MAX_QUOTE_CHARS and quoted.endswith("…")
    assert quoted.startswith("Lift comes from the pressure")  # the newline became a space
    assert footer([]) == ""


@pytest.mark.parametrize(
    "sentences",
    [["Lift exists [1]."], ["Lift exists [1].", "Drag too, [2] mostly.", "I see."]],
)
def test_streamed_words_join_into_the_answer_text(sentences: list[str]) -> None:
    deltas = [w for i, s in enumerate(sentences) for w in words(s, i)]
    assert "".join(deltas) == " ".join(sentences)
    assert all(d.strip() for d in deltas)  # no empty deltas


def _data(frame: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in frame.decode().split("\n") if line]


def test_the_gateway_ends_each_stream_format_in_its_own_words() -> None:
    ending = ErrorEvent(code="token_budget_exhausted", message="the budget ran out")
    native = asyncio.run(_events(ended(ending, "edgerag")))
    assert [(e.event, e.json()) for e in native] == [("error", ending.model_dump())]
    from_openai = _data(ended(ending, "openai"))
    assert len(from_openai) == 1
    assert json.loads(from_openai[0])["error"]["code"] == "token_budget_exhausted"
    from_ai_sdk = _data(ended(ending, "ai-sdk"))
    assert json.loads(from_ai_sdk[0]) == {
        "type": "error",
        "errorText": "token_budget_exhausted: the budget ran out",
    }
    assert from_ai_sdk[1:] == ["[DONE]"]
    assert ended(ending, "openai") == openai.stream_error(ending.code, ending.message)
    assert ended(ending, "ai-sdk") == ai_sdk.stream_error(ending.code, ending.message)


async def _events(frame: bytes) -> list[sse.Event]:
    async def chunks() -> AsyncIterator[bytes]:
        yield frame

    return [e async for e in sse.parse(chunks())]
