"""Citations carry the page of the quoted characters; hits carry the pages their chunk spans.

A 17-page PDF (tests/fixtures/pdfgen.py) whose every sentence is unique and known to lie on one
page: a quote taken from the part of a chunk after a page break must cite the later page,
although the chunk starts on the earlier one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from emulator.mesh import Mesh
from tests.e2e.conftest import new_tenant, wait_ready
from tests.e2e.test_ingestion import stored_chunks, upload
from tests.fixtures.pdfgen import make_pdf

PAGES = 17
ANIMALS = ["otter", "heron", "badger", "lynx", "marten", "ibis", "vole", "egret"]
PLACES = ["quarry", "orchard", "harbour", "meadow", "canyon", "lagoon", "glade", "ridge", "fjord"]
FOODS = ["clover", "beetles", "acorns", "minnows", "berries", "snails", "roots", "seeds"]


def sentence(page: int, i: int) -> str:
    return (
        f"On page {page} the {ANIMALS[i]} from the {PLACES[page % len(PLACES)]} "
        f"number {page * 10 + i} gathers {FOODS[(page + i) % len(FOODS)]} before the frost."
    )


def pdf_pages() -> list[str]:
    return ["\n".join(sentence(p, i) for i in range(len(ANIMALS))) for p in range(1, PAGES + 1)]


def page_of(pages: list[list[int]], offset: int) -> int:
    """The page whose span holds `offset` (from the spans ingest stored with the text)."""
    return max(number for number, start, _ in pages if start <= offset)


async def stored_pages(mesh: Mesh, document_id: str) -> list[list[int]]:
    db = mesh.stores["DB"]
    row = (
        await db.execute(
            "SELECT v.text_key FROM documents d JOIN document_versions v ON v.tenant_id = d.tenant_id"
            " AND v.document_id = d.id AND v.version = d.live_version WHERE d.id = ?1",
            (document_id,),
        )
    ).rows[0]
    blob = await mesh.stores["R2"].get(row["text_key"])
    assert blob is not None
    return [list(p) for p in json.loads(blob.data)["pages"]]


def quote_after_a_break(
    text: str, chunks: list[dict[str, Any]], pages: list[list[int]]
) -> tuple[dict[str, Any], str, int]:
    """(chunk, sentence, its page): a sentence on page p+1 found only in chunks that start on
    an earlier page, preferring the 8 → 9 break of the issue."""
    options = []
    for chunk in chunks:
        first = page_of(pages, chunk["char_start"])
        for page in range(first + 1, PAGES + 1):
            for i in range(len(ANIMALS)):
                s = sentence(page, i)
                holders = [c for c in chunks if s in c["text"]]
                if holders and all(page_of(pages, c["char_start"]) < page for c in holders):
                    assert text.count(s) == 1
                    options.append((abs(page - 9), chunk["position"], holders[0], s, page))
    assert options, "no chunk spans a page break with a sentence only it holds"
    _, _, chunk, s, page = min(options, key=lambda o: (o[0], o[1]))
    return chunk, s, page


async def test_citation_reports_the_page_of_the_quote(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "pages")
    response = await upload(client, auth, "field.pdf", "application/pdf", make_pdf(pdf_pages()))
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    assert (await wait_ready(client, auth, document_id))["status"] == "ready"
    text, chunks = await stored_chunks(mesh, document_id)
    pages = await stored_pages(mesh, document_id)
    assert len(pages) == PAGES
    chunk, target, truth = quote_after_a_break(text, chunks, pages)
    start_page = page_of(pages, chunk["char_start"])
    assert start_page < truth  # the chunk starts before the page the quote is on

    answer = await client.post("/v1/answer", json={"query": target}, headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert not body["abstained"], body
    cited = [c for c in body["citations"] if target in c["quote"] or c["quote"] in target]
    assert cited, body["citations"]
    for citation in cited:
        assert text[citation["char_start"] : citation["char_end"]] == citation["quote"]
        assert citation["page"] == page_of(pages, citation["char_start"]) == truth
        assert citation["page_end"] == page_of(pages, citation["char_end"] - 1)


async def test_hits_carry_the_pages_their_chunk_spans(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "pages")
    response = await upload(client, auth, "field.pdf", "application/pdf", make_pdf(pdf_pages()))
    document_id = response.json()["document_id"]
    assert (await wait_ready(client, auth, document_id))["status"] == "ready"
    _, chunks = await stored_chunks(mesh, document_id)
    pages = await stored_pages(mesh, document_id)
    spanning = [
        c for c in chunks if page_of(pages, c["char_start"]) < page_of(pages, c["char_end"] - 1)
    ]
    assert spanning  # ~1.3 pages of text per chunk: most chunks cross a break

    search = await client.post(
        "/v1/search",
        json={"query": "gathers before the frost", "top_k": 50, "mode": "keyword", "rerank": False},
        headers=auth,
    )
    assert search.status_code == 200, search.text
    hits = search.json()["results"]
    assert len(hits) == len(chunks)
    for hit in hits:
        first = page_of(pages, hit["char_start"])
        last = page_of(pages, hit["char_end"] - 1)
        assert (hit["page"], hit["page_start"], hit["page_end"]) == (first, first, last), hit
    assert any(h["page_start"] < h["page_end"] for h in hits)

    # The spans belong to the document: a purge removes them with it.
    purged = await client.delete(f"/v1/documents/{document_id}?purge=true", headers=auth)
    assert purged.status_code == 200 and purged.json()["purged"], purged.text
    db = mesh.stores["DB"]
    assert (await db.execute("SELECT COUNT(*) AS n FROM version_pages")).rows[0]["n"] == 0
