"""Tools over HTTP: the registry, each tool allowed and denied, the audit log, user context.

One tenant with an admin key, two teachers and a student of the first; a second tenant with a
canary document that nothing in the first may ever see. Models are the local stand-ins
(emulator.ai): the tests assert what the tools do around them — validation, permissions,
verification, budgets, audit — and the stand-ins' output only where it is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import client_for, ingest, new_tenant, wait_ready
from tests.e2e.identity import add_user, tuned_mesh

LEAF = (
    "# Plants\n\nPlants make their own food.\n\n"
    "## Photosynthesis\n\nChlorophyll absorbs red and blue light and reflects green light. "
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.\n\n"
    "## Roots\n\nRoots take up water and minerals from the soil. They anchor the plant.\n"
)
HISTORY = (
    "Marie Curie worked at the University of Paris in France. She was born in Warsaw on "
    "7 November 1867. Dr. Pierre Curie joined her research, and NASA later named a crater "
    "after them in 1970."
)
CANARY = "The zebra-canary-7731 protocol is known only to the other school."


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai)


@pytest.fixture
async def school(mesh: Mesh) -> AsyncIterator[SimpleNamespace]:
    async with client_for(mesh) as client:
        tenant, admin = await new_tenant(client, "school")
        teacher = await add_user(client, admin, tenant, "teacher", "t@school.test")
        other_teacher = await add_user(client, admin, tenant, "teacher", "t2@school.test")
        student = await add_user(client, admin, tenant, "student", "s@school.test")
        related = await client.post(
            "/v1/relationships", json={"student_id": student["id"]}, headers=teacher["auth"]
        )
        assert related.status_code == 201, related.text
        upload = await client.post(
            "/v1/documents",
            files={"file": ("leaf.md", LEAF.encode(), "text/markdown")},
            data={"title": "Leaves"},
            headers=teacher["auth"],
        )
        assert upload.status_code == 202, upload.text
        leaf = upload.json()["document_id"]
        await wait_ready(client, teacher["auth"], leaf)
        private = await ingest(
            client,
            teacher["auth"],
            "Marking notes",
            "Private marking notes about stomata.",
            visibility="private",
        )
        history = await ingest(client, admin, "Curie", HISTORY)
        _, other_admin = await new_tenant(client, "other school")
        canary = await ingest(client, other_admin, "Canary", CANARY)
        yield SimpleNamespace(
            client=client,
            tenant=tenant,
            admin=admin,
            teacher=teacher,
            other_teacher=other_teacher,
            student=student,
            leaf=leaf,
            private=private["document_id"],
            history=history["document_id"],
            other_admin=other_admin,
            canary=canary["document_id"],
        )
        await mesh.drain()


async def run(s: SimpleNamespace, who: dict[str, str], tool: str, args: Any) -> httpx.Response:
    return await s.client.post(f"/v1/tools/{tool}", json=args, headers=who)


def error(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


# --- the registry -----------------------------------------------------------------------------
async def test_the_registry_lists_what_the_caller_may_use_with_schemas(
    school: SimpleNamespace,
) -> None:
    listed = await school.client.get("/v1/tools", headers=school.student["auth"])
    tools = {t["name"]: t for t in listed.json()["tools"]}
    assert listed.status_code == 200 and "ingest_document" not in tools
    assert {"search_knowledge_base", "get_document", "summarize", "classify_intent"} <= set(tools)
    search = tools["search_knowledge_base"]
    assert search["parameters"]["required"] == ["query"]
    assert search["parameters"]["additionalProperties"] is False
    assert search["access"] == "read" and search["rate_class"] == "search"
    # The stand-ins behind the model tools are named as such in /health.
    health = (await school.client.get("/health")).text
    assert "stand-in: cue-word entity tagger" in health and "stand-in: frequent-terms" in health
    assert "stand-in: searches the knowledge base once" in health
    teacher = await school.client.get("/v1/tools", headers=school.teacher["auth"])
    ingest_tool = next(t for t in teacher.json()["tools"] if t["name"] == "ingest_document")
    assert ingest_tool["access"] == "write" and ingest_tool["roles"] == ["admin", "teacher"]


async def test_unknown_tool_bad_arguments_and_no_token(school: SimpleNamespace) -> None:
    unknown = await run(school, school.student["auth"], "drop_tables", {})
    assert unknown.status_code == 404 and error(unknown)["code"] == "unknown_tool"
    for args, field in (
        ({"query": "light", "top_k": "5"}, "top_k"),  # a string is not an integer
        ({"query": "light", "extra": 1}, "extra"),  # unknown fields are errors
        ({"query": "x" * 5000}, "query"),  # over the length limit
        ({}, "query"),
        ([1, 2], "body"),
    ):
        bad = await run(school, school.student["auth"], "search_knowledge_base", args)
        assert bad.status_code == 422, (args, bad.text)
        assert error(bad)["details"]["fields"][0]["field"] == field, bad.text
    anonymous = await school.client.post("/v1/tools/search_knowledge_base", json={"query": "x"})
    assert anonymous.status_code == 401


# --- search_knowledge_base ---------------------------------------------------------------------
async def test_search_stays_inside_the_callers_visibility_and_tenant(
    school: SimpleNamespace,
) -> None:
    found = await run(school, school.student["auth"], "search_knowledge_base", {"query": "light"})
    passages = found.json()["result"]["passages"]
    assert found.status_code == 200 and passages[0]["document_id"] == school.leaf
    assert "ratelimit-policy" in found.headers and found.headers["ratelimit-policy"].startswith(
        '"search-user";q=120;w=60'  # the search class, not the generic api class
    )
    for query in ("stomata marking notes", "zebra-canary-7731 protocol"):
        hidden = await run(
            school, school.student["auth"], "search_knowledge_base", {"query": query}
        )
        ids = {p["document_id"] for p in hidden.json()["result"]["passages"]}
        assert school.private not in ids and school.canary not in ids
        assert "canary" not in hidden.text
    owner = await run(
        school, school.teacher["auth"], "search_knowledge_base", {"query": "stomata marking"}
    )
    assert school.private in {p["document_id"] for p in owner.json()["result"]["passages"]}
    # Query syntax of the keyword index is text, not an operator.
    for hostile in ('light" OR 1=1 --', "NEAR(light water)", "light*", "'; DROP TABLE chunks;"):
        response = await run(
            school, school.student["auth"], "search_knowledge_base", {"query": hostile}
        )
        assert response.status_code == 200, (hostile, response.text)


# --- get_document ------------------------------------------------------------------------------
async def test_get_document_by_section_and_page_and_hidden_ones(school: SimpleNamespace) -> None:
    got = await run(
        school,
        school.student["auth"],
        "get_document",
        {"document_id": school.leaf, "section": "Plants > Photosynthesis"},
    )
    result = got.json()["result"]
    assert got.status_code == 200 and result["document"]["title"] == "Leaves"
    assert [s["path"] for s in result["sections"]] == [
        ["Plants"],
        ["Plants", "Photosynthesis"],
        ["Plants", "Roots"],
    ]
    section = result["section"]
    assert section["text"].startswith("## Photosynthesis") and "Roots" not in section["text"]
    by_title = await run(
        school,
        school.student["auth"],
        "get_document",
        {"document_id": school.leaf, "section": "roots"},
    )
    assert by_title.json()["result"]["section"]["path"] == ["Plants", "Roots"]
    start = await run(
        school,
        school.student["auth"],
        "get_document",
        {"document_id": school.leaf, "max_chars": 200},
    )
    first = start.json()["result"]["section"]  # no locator: the beginning
    assert first["path"] == ["Plants"] and first["text"].startswith("# Plants")
    for doc in (school.private, school.canary, "d_doesnotexist"):
        hidden = await run(school, school.student["auth"], "get_document", {"document_id": doc})
        assert hidden.status_code == 404 and "canary" not in hidden.text.lower()
    missing = await run(
        school,
        school.student["auth"],
        "get_document",
        {"document_id": school.leaf, "section": "Fungi"},
    )
    assert missing.status_code == 404
    both = await run(
        school,
        school.student["auth"],
        "get_document",
        {"document_id": school.leaf, "section": "Roots", "page": 1},
    )
    assert both.status_code == 422


# --- user context ------------------------------------------------------------------------------
async def test_user_context_read_by_its_user_and_their_teachers_only(
    school: SimpleNamespace,
) -> None:
    c, student = school.client, school.student
    empty = await c.get("/v1/me/context", headers=student["auth"])
    assert empty.json() == {
        "level": None,
        "goals": [],
        "constraints": [],
        "interests": [],
        "preferred_language": None,
        "notes": None,
        "user_id": student["id"],
        "updated_at": None,
    }
    body = {
        "level": "beginner",
        "goals": ["understand photosynthesis"],
        "interests": ["gardening"],
        "preferred_language": "ur",
        "notes": "prefers short answers",
    }
    put = await c.put("/v1/me/context", json=body, headers=student["auth"])
    assert put.status_code == 200 and put.json()["level"] == "beginner"
    for bad, field in (
        ({"level": "expert"}, "level"),
        ({"goals": ["x"] * 11}, "goals"),
        ({"preferred_language": "not a tag"}, "preferred_language"),
        ({"notes": "n" * 2001}, "notes"),
        ({"mood": "happy"}, "mood"),
    ):
        refused = await c.put("/v1/me/context", json=bad, headers=student["auth"])
        assert (
            refused.status_code == 422 and error(refused)["details"]["fields"][0]["field"] == field
        )
    mine = await c.get(f"/v1/users/{student['id']}/context", headers=school.teacher["auth"])
    assert mine.status_code == 200 and mine.json()["goals"] == ["understand photosynthesis"]
    tool = await run(school, school.teacher["auth"], "get_user_context", {"user_id": student["id"]})
    assert tool.status_code == 200 and tool.json()["result"]["level"] == "beginner"
    own = await run(school, student["auth"], "get_user_context", {})
    assert own.json()["result"]["notes"] == "prefers short answers"
    # Another teacher, an admin, and the student about someone else: nobody else's.
    for who, subject in (
        (school.other_teacher["auth"], student["id"]),
        (school.admin, student["id"]),
        (student["auth"], school.teacher["id"]),
    ):
        refused = await c.get(f"/v1/users/{subject}/context", headers=who)
        assert refused.status_code == 404 and "short answers" not in refused.text
        by_tool = await run(school, who, "get_user_context", {"user_id": subject})
        assert by_tool.status_code == 404


# --- summarize, extract_entities, classify_intent ----------------------------------------------
async def test_summarize_a_document_cites_verified_spans(school: SimpleNamespace) -> None:
    done = await run(
        school,
        school.student["auth"],
        "summarize",
        {"document_id": school.leaf, "length": "short", "format": "bullets"},
    )
    result = done.json()["result"]
    assert done.status_code == 200 and 1 <= len(result["sentences"]) <= 3
    assert result["summary"].startswith("- ") and result["citations"]
    assert result["generated_by"]["provider"] == "workers-ai"
    text = (
        await run(
            school,
            school.student["auth"],
            "get_document",
            {"document_id": school.leaf, "max_chars": 20000},
        )
    ).json()
    assert text["result"]["section"]["char_start"] == 0
    for citation in result["citations"]:
        assert citation["document_id"] == school.leaf
        assert LEAF[citation["char_start"] : citation["char_end"]] == citation["quote"]
    for sentence in result["sentences"]:
        assert sentence["citations"] and sentence["text"] in LEAF
    section = await run(
        school,
        school.student["auth"],
        "summarize",
        {"document_id": school.leaf, "section": "Roots"},
    )
    assert all(
        "Roots" in c["quote"] or "soil" in c["quote"] or "anchor" in c["quote"]
        for c in section.json()["result"]["citations"]
    )
    given = await run(school, school.student["auth"], "summarize", {"text": HISTORY})
    assert given.status_code == 200 and given.json()["result"]["sentences"]
    assert given.json()["result"]["citations"] == []
    hidden = await run(school, school.student["auth"], "summarize", {"document_id": school.private})
    assert hidden.status_code == 404
    both = await run(
        school, school.student["auth"], "summarize", {"document_id": school.leaf, "text": "x"}
    )
    assert both.status_code == 422


async def test_extract_entities_keeps_only_what_the_text_says(school: SimpleNamespace) -> None:
    done = await run(school, school.student["auth"], "extract_entities", {"text": HISTORY})
    result = done.json()["result"]
    by_type = {(e["text"], e["type"]) for e in result["entities"]}
    assert done.status_code == 200
    assert {
        ("Marie Curie", "person"),
        ("University of Paris", "organization"),
        ("Warsaw", "place"),
        ("7 November 1867", "date"),
    } <= by_type
    for entity in result["entities"]:
        assert HISTORY[entity["char_start"] : entity["char_end"]] == entity["text"]
    only_dates = await run(
        school,
        school.student["auth"],
        "extract_entities",
        {"document_id": school.history, "types": ["date"]},
    )
    assert {e["type"] for e in only_dates.json()["result"]["entities"]} == {"date"}
    hidden = await run(
        school, school.student["auth"], "extract_entities", {"document_id": school.private}
    )
    assert hidden.status_code == 404  # a document the caller may not read is not read for them
    unknown = await run(
        school,
        school.student["auth"],
        "extract_entities",
        {"text": HISTORY, "types": ["spaceship"]},
    )
    assert unknown.status_code == 422 and error(unknown)["details"]["fields"][0]["field"] == "types"
    # A tenant-defined type joins the built-in ones (the stand-in tags none; a model would).
    settings = await school.client.patch(
        "/v1/settings",
        json={"entity_types": [{"name": "element", "description": "a chemical element"}]},
        headers=school.admin,
    )
    assert settings.status_code == 200, settings.text
    custom = await run(
        school,
        school.student["auth"],
        "extract_entities",
        {"text": "Radium and polonium.", "types": ["element", "person"]},
    )
    assert custom.status_code == 200 and custom.json()["result"]["types"] == ["element", "person"]


async def test_classify_intent_default_tenant_and_given_labels(school: SimpleNamespace) -> None:
    async def top(text: str, **extra: Any) -> dict[str, Any]:
        response = await run(
            school, school.student["auth"], "classify_intent", {"text": text, **extra}
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["result"])

    greeting = await top("Hi there, thanks so much!")
    assert greeting["labels"][0]["label"] == "small_talk"
    assert abs(sum(s["confidence"] for s in greeting["scores"]) - 1) < 1e-3
    compare = await top("How do mitosis and meiosis differ?")
    assert compare["labels"][0]["label"] == "comparison"
    labels = [
        {"name": "billing", "description": "payments, invoices and refunds"},
        {"name": "homework", "description": "help with school exercises and assignments"},
    ]
    given = await top("I was charged twice for my subscription", labels=labels)
    assert given["labels"][0]["label"] == "billing" and given["method"] == "embedding similarity"
    multi = await top(
        "Can you help with my maths exercise and refund me?",
        labels=labels,
        multi_label=True,
        threshold=0.0,
    )
    assert {s["label"] for s in multi["labels"]} == {"billing", "homework"}


# --- tag_document, ingest_document -------------------------------------------------------------
async def test_tag_document_suggests_to_readers_and_applies_for_owners(
    school: SimpleNamespace,
) -> None:
    suggest = await run(
        school, school.student["auth"], "tag_document", {"document_id": school.leaf}
    )
    result = suggest.json()["result"]
    assert suggest.status_code == 200 and result["suggested_tags"] and not result["applied"]
    assert result["suggested_metadata"]["language"] == "en"
    for who in (school.student["auth"], school.other_teacher["auth"]):
        refused = await run(
            school, who, "tag_document", {"document_id": school.leaf, "apply": True}
        )
        assert refused.status_code == 403, refused.text
    unchanged = await school.client.get(f"/v1/documents/{school.leaf}", headers=school.admin)
    assert unchanged.json()["tags"] == []
    applied = await run(
        school,
        school.teacher["auth"],
        "tag_document",
        {"document_id": school.leaf, "apply": True, "max_tags": 3},
    )
    assert applied.status_code == 200 and applied.json()["result"]["applied"]
    stored = await school.client.get(f"/v1/documents/{school.leaf}", headers=school.admin)
    assert set(applied.json()["result"]["suggested_tags"]) <= set(stored.json()["tags"])
    assert stored.json()["metadata"]["language"] == "en"


async def test_ingest_document_for_teachers_and_admins_only(school: SimpleNamespace) -> None:
    args = {"title": "Fungi", "text": "Mushrooms are the fruiting bodies of fungi."}
    refused = await run(school, school.student["auth"], "ingest_document", args)
    assert refused.status_code == 403 and error(refused)["code"] == "tool_forbidden"
    done = await run(school, school.teacher["auth"], "ingest_document", args)
    assert done.status_code == 200, done.text
    assert done.headers["ratelimit-policy"].startswith('"ingest-user";q=60;w=3600')
    document_id = done.json()["result"]["document_id"]
    status = await wait_ready(school.client, school.teacher["auth"], document_id)
    assert status["status"] == "ready"
    detail = await school.client.get(f"/v1/documents/{document_id}", headers=school.admin)
    assert detail.json()["owner_id"] == school.teacher["id"]
    bad_url = await run(
        school,
        school.teacher["auth"],
        "ingest_document",
        {"title": "Local", "url": "http://127.0.0.1:9/secret"},
    )
    assert bad_url.status_code in (400, 422), bad_url.text


# --- the audit log -----------------------------------------------------------------------------
async def test_every_call_is_audited_with_hashed_arguments_only(
    school: SimpleNamespace, data_dir: Path
) -> None:
    secret_query = "what did the secret-owl-4410 say"
    args = {"query": secret_query, "top_k": 2}
    await run(school, school.student["auth"], "search_knowledge_base", args)
    await run(school, school.student["auth"], "ingest_document", {"title": "x", "text": "y"})
    await run(school, school.student["auth"], "search_knowledge_base", {"top_k": "x"})
    await run(school, school.student["auth"], "no_such_tool", {})
    page = await school.client.get("/v1/audit?limit=10", headers=school.admin)
    assert page.status_code == 200, page.text
    entries = page.json()["entries"]
    assert [(e["tool"], e["outcome"], e["error_code"]) for e in entries[:4]] == [
        ("no_such_tool", "error", "unknown_tool"),
        ("search_knowledge_base", "error", "validation_error"),
        ("ingest_document", "error", "tool_forbidden"),
        ("search_knowledge_base", "ok", None),
    ]
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"))
    assert entries[3]["args_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert all(
        e["user_id"] == school.student["id"] and not e["model_requested"] for e in entries[:4]
    )
    assert secret_query not in page.text
    with sqlite3.connect(data_dir / "d1" / "edgerag.sqlite") as db:
        rows = db.execute("SELECT * FROM tool_audit").fetchall()
    assert rows and not any("secret-owl" in str(v) for row in rows for v in row)
    # Filters and cursor pages.
    only = await school.client.get("/v1/audit?tool=ingest_document", headers=school.admin)
    assert {e["tool"] for e in only.json()["entries"]} == {"ingest_document"}
    first = (await school.client.get("/v1/audit?limit=2", headers=school.admin)).json()
    second = (
        await school.client.get(
            f"/v1/audit?limit=2&cursor={first['next_cursor']}", headers=school.admin
        )
    ).json()
    assert first["next_cursor"] and not {e["id"] for e in first["entries"]} & {
        e["id"] for e in second["entries"]
    }
    assert second["entries"][0]["id"] == entries[2]["id"]
    later = await school.client.get("/v1/audit?since=2999-01-01T00:00:00Z", headers=school.admin)
    assert later.json()["entries"] == []
    by_user = await school.client.get(
        f"/v1/audit?user_id={school.teacher['id']}", headers=school.admin
    )
    assert all(e["user_id"] == school.teacher["id"] for e in by_user.json()["entries"])
    for bad in ("limit=0", "tool=rm", "since=yesterday", "cursor=nope", "color=red"):
        refused = await school.client.get(f"/v1/audit?{bad}", headers=school.admin)
        assert refused.status_code == 422, bad
    teacher = await school.client.get("/v1/audit", headers=school.teacher["auth"])
    assert teacher.status_code == 403
    other = await school.client.get("/v1/audit", headers=school.other_admin)
    assert other.status_code == 200 and other.json()["entries"] == []
