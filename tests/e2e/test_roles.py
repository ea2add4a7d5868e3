"""Roles and sharing: canary documents at every visibility, read by every role.

A caller never receives a chunk they may not see — not in results, ranks, scores, answers,
citations, follow-ups, cached responses, document listings or document routes — and another
tenant's documents stay invisible to everyone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import assert_error, ingest, new_tenant
from tests.e2e.identity import add_user, tuned_mesh

TOPIC = "The migratory zephyrine quokka crosses the glacier plateau every spring."
CANARIES = {
    "tenant": "canarytenantalpha",
    "private": "canaryprivatebravo",
    "students_t1": "canarystudentscharlie",
    "students_t2": "canarystudentsdelta",
    "admin_private": "canaryadminecho",
    "other_tenant": "canaryforeignfoxtrot",
}


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai)


# `client` is conftest's: it picks up this module's `mesh`.


def text_for(canary: str) -> str:
    return f"{TOPIC} Field notes mention the codeword {canary} beside the quokka tracks."


async def school(client: httpx.AsyncClient) -> dict[str, Any]:
    tenant_id, admin = await new_tenant(client, "canary school")
    _, foreign_admin = await new_tenant(client, "another school")
    t1 = await add_user(client, admin, tenant_id, "teacher", "t1@school.org")
    t2 = await add_user(client, admin, tenant_id, "teacher", "t2@school.org")
    s1 = await add_user(client, admin, tenant_id, "student", "s1@school.org")
    s2 = await add_user(client, admin, tenant_id, "student", "s2@school.org")
    rel = await client.post("/v1/relationships", json={"student_id": s1["id"]}, headers=t1["auth"])
    assert rel.status_code == 201, rel.text
    docs = {
        "tenant": await ingest(client, t1["auth"], "Tenant notes", text_for(CANARIES["tenant"])),
        "private": await ingest(
            client, t1["auth"], "T1 private", text_for(CANARIES["private"]), visibility="private"
        ),
        "students_t1": await ingest(
            client,
            t1["auth"],
            "T1 class",
            text_for(CANARIES["students_t1"]),
            visibility="students",
        ),
        "students_t2": await ingest(
            client,
            t2["auth"],
            "T2 class",
            text_for(CANARIES["students_t2"]),
            visibility="students",
        ),
        "admin_private": await ingest(
            client,
            admin,
            "Admin private",
            text_for(CANARIES["admin_private"]),
            visibility="private",
        ),
        "other_tenant": await ingest(
            client, foreign_admin, "Foreign", text_for(CANARIES["other_tenant"])
        ),
    }
    return {
        "tenant_id": tenant_id,
        "admin": admin,
        "foreign": foreign_admin,
        "t1": t1,
        "t2": t2,
        "s1": s1,
        "s2": s2,
        "rel": rel.json(),
        "docs": {k: v["document_id"] for k, v in docs.items()},
    }


EXPECTED = {
    "admin": {"tenant", "private", "students_t1", "students_t2", "admin_private"},
    "t1": {"tenant", "private", "students_t1"},
    "t2": {"tenant", "students_t2"},
    "s1": {"tenant", "students_t1"},
    "s2": {"tenant"},
    "foreign": {"other_tenant"},
}


def auth_of(world: dict[str, Any], who: str) -> dict[str, str]:
    value = world[who]
    return dict(value if who in ("admin", "foreign") else value["auth"])


def seen(text: str) -> set[str]:
    return {name for name, canary in CANARIES.items() if canary in text}


async def test_visibility_in_search_answers_lists_and_document_routes(
    client: httpx.AsyncClient,
) -> None:
    world = await school(client)
    query = "zephyrine quokka codeword glacier"
    for who, expected in EXPECTED.items():
        auth = auth_of(world, who)
        for mode in ("hybrid", "dense", "keyword"):
            for attempt in range(2):  # the second is served from the cache
                response = await client.post(
                    "/v1/search",
                    json={"query": query, "top_k": 20, "mode": mode, "rerank": mode == "hybrid"},
                    headers=auth,
                )
                assert response.status_code == 200, response.text
                assert seen(response.text) == expected, (who, mode, attempt)
                body = response.json()
                assert body["cached"] is (attempt == 1)
                ids = {r["document_id"] for r in body["results"]}
                assert ids == {world["docs"][k] for k in expected}, (who, mode)
                # Ranks count only what the caller may see.
                dense = sorted(r["dense_rank"] for r in body["results"] if r["dense_rank"])
                assert dense == list(range(1, len(dense) + 1)), (who, mode)
        answer = await client.post(
            "/v1/answer", json={"query": "Where does the zephyrine quokka cross?"}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        assert seen(answer.text) <= expected, who
        cited = {c["document_id"] for c in answer.json()["citations"]}
        assert cited <= {world["docs"][k] for k in expected}, who
        listing = await client.get("/v1/documents", headers=auth)
        assert {d["id"] for d in listing.json()["documents"]} == {
            world["docs"][k] for k in expected
        }, who
        for name, document_id in world["docs"].items():
            for suffix in ("", "/status"):
                response = await client.get(f"/v1/documents/{document_id}{suffix}", headers=auth)
                if name in expected:
                    assert response.status_code == 200, (who, name, response.text)
                else:
                    assert_error(response, 404, "not_found")


async def test_filters_cannot_widen_visibility(client: httpx.AsyncClient) -> None:
    world = await school(client)
    s2 = world["s2"]["auth"]
    hidden = [world["docs"][k] for k in ("private", "students_t1", "admin_private")]
    for filters in (
        {"document_ids": hidden},
        {"visibility": ["private", "students"]},
        {"document_ids": [world["docs"]["other_tenant"]]},
    ):
        response = await client.post(
            "/v1/search", json={"query": "zephyrine quokka", "filters": filters}, headers=s2
        )
        assert response.status_code == 200 and response.json()["results"] == [], filters
        answer = await client.post(
            "/v1/answer", json={"query": "zephyrine quokka", "filters": filters}, headers=s2
        )
        assert answer.json()["abstained"] is True and not seen(answer.text)


async def test_relationship_changes_apply_at_once_even_with_caches(
    client: httpx.AsyncClient,
) -> None:
    world = await school(client)
    s1, t1 = world["s1"]["auth"], world["t1"]["auth"]
    query = {"query": "zephyrine quokka codeword", "top_k": 20}
    first = await client.post("/v1/search", json=query, headers=s1)
    assert seen(first.text) == {"tenant", "students_t1"}
    removed = await client.delete(f"/v1/relationships/{world['rel']['id']}", headers=t1)
    assert removed.status_code == 200, removed.text
    after = await client.post("/v1/search", json=query, headers=s1)
    assert seen(after.text) == {"tenant"} and after.json()["cached"] is False
    # An admin's cached result (it sees everything) is never served to a student.
    await client.post("/v1/search", json=query, headers=world["admin"])
    again = await client.post("/v1/search", json=query, headers=world["s2"]["auth"])
    assert seen(again.text) == {"tenant"}


async def test_chat_respects_visibility(client: httpx.AsyncClient) -> None:
    world = await school(client)
    s2 = world["s2"]["auth"]
    session = await client.post("/v1/chat/sessions", json={}, headers=s2)
    assert session.status_code == 201, session.text
    sid = session.json()["session_id"]
    for stream in (False, True):
        reply = await client.post(
            f"/v1/chat/sessions/{sid}/messages",
            json={
                "content": "What codeword is beside the zephyrine quokka tracks?",
                "stream": stream,
            },
            headers=s2,
        )
        assert reply.status_code == 200, reply.text
        assert seen(reply.text) <= {"tenant"}


async def test_roles_gate_writes(client: httpx.AsyncClient) -> None:
    world = await school(client)
    s1, t1, t2 = world["s1"]["auth"], world["t1"]["auth"], world["t2"]["auth"]
    docs = world["docs"]
    # Students read; they never upload, replace, delete or restore.
    assert_error(
        await client.post("/v1/documents", json={"title": "x", "text": "y"}, headers=s1),
        403,
        "forbidden",
    )
    assert_error(await client.delete(f"/v1/documents/{docs['tenant']}", headers=s1), 403)
    assert_error(
        await client.put(
            f"/v1/documents/{docs['tenant']}", json={"title": "x", "text": "y"}, headers=s1
        ),
        403,
    )
    # Teachers change only their own documents; a document they cannot see is a 404.
    assert_error(await client.delete(f"/v1/documents/{docs['tenant']}", headers=t2), 403)
    assert_error(await client.delete(f"/v1/documents/{docs['private']}", headers=t2), 404)
    assert (await client.delete(f"/v1/documents/{docs['tenant']}", headers=t1)).status_code == 200
    restore = await client.post(f"/v1/documents/{docs['tenant']}/restore", headers=t1)
    assert restore.status_code == 200, restore.text
    # Admins change anything; settings stay admin-only.
    admin = world["admin"]
    assert (
        await client.delete(f"/v1/documents/{docs['students_t2']}", headers=admin)
    ).status_code == 200
    assert_error(await client.patch("/v1/settings", json={"chunk_tokens": 100}, headers=t1), 403)
    # Relationships: teachers add their own students; students cannot; admins name the teacher.
    assert_error(
        await client.post("/v1/relationships", json={"student_id": world["s2"]["id"]}, headers=s1),
        403,
    )
    assert_error(
        await client.post("/v1/relationships", json={"student_id": world["t2"]["id"]}, headers=t1),
        422,
    )
    assert_error(
        await client.post("/v1/relationships", json={"student_id": world["s1"]["id"]}, headers=t1),
        409,
    )
    made = await client.post(
        "/v1/relationships",
        json={"student_id": world["s2"]["id"], "teacher_id": world["t2"]["id"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    mine = (await client.get("/v1/relationships", headers=s1)).json()["relationships"]
    assert [r["teacher_id"] for r in mine] == [world["t1"]["id"]]
    assert_error(await client.delete(f"/v1/relationships/{made.json()['id']}", headers=t1), 404)
    everyone = (await client.get("/v1/relationships", headers=admin)).json()["relationships"]
    assert len(everyone) == 2
    # Teachers look up students (to add them); students cannot list users.
    students = (await client.get("/v1/users", headers=t1)).json()["users"]
    assert {u["role"] for u in students} == {"student"}
    assert_error(await client.get("/v1/users", headers=s1), 403)
