"""The web console through the mesh over HTTP: the page and every file it loads come from the
gateway's /console rows (the emulator's ASSETS binding over console/), under a CSP the page
obeys; and the document route the console opens citations with (a character span)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from gateway.console import CSP
from tests.e2e.conftest import ingest, new_tenant
from tests.e2e.devserver import DevServer

CONSOLE = Path(__file__).resolve().parents[2] / "console"
TEXT = (
    "Lift is the upward force made by the wings. Weight is the pull of gravity. "
    "Thrust pushes the aircraft forward and drag holds it back."
)


def _referenced() -> set[str]:
    """Every console file the page names and every module the scripts import."""
    html = (CONSOLE / "index.html").read_text()
    names = set(re.findall(r'(?:src|href)="/console/([^"]+)"', html))
    for script in CONSOLE.glob("*.js"):
        names |= set(re.findall(r'from "\./([^"]+)"', script.read_text()))
    return names


async def test_the_page_and_every_file_it_loads_are_served_with_their_types(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.content == (CONSOLE / "index.html").read_bytes()
    assert (await client.get("/console/")).content == page.content
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    referenced = _referenced()
    assert {"app.js", "app.css", "api.js", "ask.js", "documents.js", "admin.js"} <= referenced
    for name in sorted(referenced):
        reply = await client.get(f"/console/{name}")
        assert reply.status_code == 200, name
        assert reply.headers["content-type"].startswith(types[Path(name).suffix]), name
        assert reply.content == (CONSOLE / name).read_bytes()
        assert reply.headers["content-security-policy"] == CSP


async def test_revalidation_head_and_refusals(client: httpx.AsyncClient) -> None:
    first = await client.get("/console/app.js")
    etag = first.headers["etag"]
    again = await client.get("/console/app.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    head = await client.head("/console/app.css")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/css")
    for path in ("/console/nope.js", "/console/..%2Fwrangler.toml", "/console/.assetsignore"):
        missing = await client.get(path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert missing.headers["cache-control"] == "no-store"  # errors keep the API's headers
    refused = await client.post("/console", content=b"x")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


def test_the_page_needs_nothing_its_csp_forbids() -> None:
    """No inline script or style, no event-handler attributes, nothing from another origin:
    `default-src 'self'` and friends hold without 'unsafe-inline'."""
    html = (CONSOLE / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    for path in CONSOLE.glob("*.js"):
        code = path.read_text()
        for forbidden in (
            "innerHTML",
            "outerHTML =",
            "eval(",
            "new Function",
            ".style.",
            "http://",
            "https://",
        ):
            assert forbidden not in code, (path.name, forbidden)
        assert 'setAttribute("style"' not in code
    css = (CONSOLE / "app.css").read_text()
    assert "@import" not in css and "url(http" not in css


async def test_a_character_span_of_the_live_version(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "console-spans")
    doc = (await ingest(client, auth, "Forces", TEXT))["document_id"]
    path = f"/v1/documents/{doc}/sections"
    start = TEXT.index("Weight")
    end = start + len("Weight is the pull of gravity.")
    reply = await client.get(path, params={"char_start": start, "char_end": end}, headers=auth)
    assert reply.status_code == 200, reply.text
    section = reply.json()["section"]
    assert section["text"] == TEXT[start:end] and not section["truncated"]
    assert (section["char_start"], section["char_end"], section["path"]) == (start, end, [])
    # A window around a quote may run past the end: it reads to the end.
    tail = await client.get(path, params={"char_start": 50, "char_end": 10**6}, headers=auth)
    assert tail.json()["section"]["text"] == TEXT[50:]
    short = await client.get(
        path, params={"char_start": 0, "char_end": 100, "max_chars": 10}, headers=auth
    )
    assert short.json()["section"]["text"] == TEXT[:10] and short.json()["section"]["truncated"]
    refusals: list[dict[str, str | int]] = [
        {"char_start": 5},
        {"char_end": 5},
        {"char_start": 10, "char_end": 10},
        {"char_start": len(TEXT), "char_end": len(TEXT) + 5},
        {"char_start": "x", "char_end": 5},
        {"char_start": 0, "char_end": 5, "page": 1},
    ]
    for params in refusals:
        refused = await client.get(path, params=params, headers=auth)
        assert refused.status_code == 422, (params, refused.text)


def test_make_dev_serves_the_console_and_says_where(tmp_path: Path) -> None:
    """The real `python -m emulator.dev` process: the console from its own folder, whatever
    the working directory's files, and its URL in the start-up lines."""
    with (tmp_path / "dev.log").open("w") as log:
        server = DevServer(tmp_path / "edgerag", log, env={"EDGERAG_TTS_PROVIDERS": "none"})
        try:
            server.wait_healthy(120)
            page = httpx.get(f"{server.base}/console", timeout=30)
            assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
            assert b'src="/console/app.js"' in page.content
            assert f"web console on {server.base}/console" in server.output()
        finally:
            server.stop()
