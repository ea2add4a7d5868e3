"""Learning features over HTTP: reading progress as the student, their teacher, another
student and an admin see it; questions counted from answers and chat; per-feature rate limits
and a tenant's own limits within the operator's ceilings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import client_for, new_tenant, wait_ready
from tests.e2e.identity import OPERATOR, add_user, tuned_mesh

CHAPTER = (
    "# Plants\n\nPlants make their own food.\n\n"
    "## Photosynthesis\n\nChlorophyll absorbs red and blue light and reflects green light.\n\n"
    "## Roots\n\nRoots take up water and minerals from the soil.\n"
)


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai, EDGERAG_RATE_CEILINGS='{"personalize": {"user": [8, 86400]}}')


@pytest.fixture
async def school(mesh: Mesh) -> AsyncIterator[SimpleNamespace]:
    async with client_for(mesh) as client:
        tenant, admin = await new_tenant(client, "learning")
        teacher = await add_user(client, admin, tenant, "teacher", "t@learn.test")
        student = await add_user(client, admin, tenant, "student", "s@learn.test")
        other = await add_user(client, admin, tenant, "student", "o@learn.test")
        await client.post(
            "/v1/relationships", json={"student_id": student["id"]}, headers=teacher["auth"]
        )
        upload = await client.post(
            "/v1/documents",
            files={"file": ("plants.md", CHAPTER.encode(), "text/markdown")},
            data={"title": "Plants", "visibility": "private"},
            headers=teacher["auth"],
        )
        private = upload.json()["document_id"]
        upload = await client.post(
            "/v1/documents",
            files={"file": ("plants.md", CHAPTER.encode(), "text/markdown")},
            data={"title": "Plants"},
            headers=teacher["auth"],
        )
        doc = upload.json()["document_id"]
        await wait_ready(client, teacher["auth"], doc)
        await wait_ready(client, teacher["auth"], private)
        yield SimpleNamespace(
            client=client,
            tenant=tenant,
            admin=admin,
            teacher=teacher,
            student=student,
            other=other,
            doc=doc,
            private=private,
        )
        await mesh.drain()


async def test_progress_as_the_student_their_teacher_another_student_and_an_admin(
    school: SimpleNamespace,
) -> None:
    c, student = school.client, school.student
    for body in (
        {"document_id": school.doc, "section": "Plants > Photosynthesis"},
        {"document_id": school.doc, "section": "Roots", "completed": True},  # by title
        {"document_id": school.doc, "section": "Plants > Photosynthesis", "completed": True},
        {"document_id": school.doc, "section": "Plants > Photosynthesis"},  # stays completed
    ):
        recorded = await c.post("/v1/me/progress", json=body, headers=student["auth"])
        assert recorded.status_code == 200, recorded.text
    await c.post(
        "/v1/answer", json={"query": "What does chlorophyll absorb?"}, headers=student["auth"]
    )
    await c.post(
        "/v1/answer", json={"query": "What does chlorophyll absorb?"}, headers=student["auth"]
    )  # cached, still a question asked
    session = (await c.post("/v1/chat/sessions", json={}, headers=student["auth"])).json()
    await c.post(
        f"/v1/chat/sessions/{session['session_id']}/messages",
        json={"content": "What do roots take up?"},
        headers=student["auth"],
    )
    mine = (await c.get("/v1/me/progress", headers=student["auth"])).json()
    (doc,) = mine["documents"]
    assert doc["document_id"] == school.doc and doc["sections_read"] == 2
    assert doc["sections_completed"] == 2
    assert {s["section"] for s in doc["sections"]} == {"Plants > Photosynthesis", "Plants > Roots"}
    assert mine["questions_asked"] == 3 and mine["last_question_at"]
    seen = await c.get(f"/v1/users/{student['id']}/progress", headers=school.teacher["auth"])
    assert seen.status_code == 200 and seen.json() == mine
    for who in (school.other["auth"], school.admin):
        refused = await c.get(f"/v1/users/{student['id']}/progress", headers=who)
        assert refused.status_code == 404 and "Photosynthesis" not in refused.text
    summary = await c.get("/v1/progress/summary", headers=school.admin)
    assert summary.status_code == 200
    assert summary.json()["documents"][0]["readers"] == 1 and summary.json()["questions_asked"] == 3
    assert (await c.get("/v1/progress/summary", headers=school.teacher["auth"])).status_code == 403
    # Bad input: an unknown section, a document the student may not see, wrong types.
    for body, status in (
        ({"document_id": school.doc, "section": "Fungi"}, 404),
        ({"document_id": school.private}, 404),
        ({"document_id": school.doc, "completed": "yes"}, 422),
        ({"document_id": "../etc"}, 422),
    ):
        bad = await c.post("/v1/me/progress", json=body, headers=student["auth"])
        assert bad.status_code == status, (body, bad.text)
    assert (await c.get("/v1/me/progress", headers=school.other["auth"])).json()["documents"] == []


async def test_a_tenant_tunes_its_limits_within_the_operators_ceilings(
    school: SimpleNamespace,
) -> None:
    c, path = school.client, f"/v1/tenants/{school.tenant}"
    over = await c.patch(
        path, json={"rate_limits": {"personalize": {"user": 9}}}, headers=school.admin
    )
    assert over.status_code == 422 and "at most 8" in over.text
    for bad in ({"login": {"ip": 5}}, {"answer": {"ip": 5}}, {"answer": {"user": 0}}):
        refused = await c.patch(path, json={"rate_limits": bad}, headers=school.admin)
        assert refused.status_code == 422, (bad, refused.text)
    tuned = await c.patch(
        path,
        json={"rate_limits": {"personalize": {"user": 8}, "answer": {"user": 2}}},
        headers=school.admin,
    )
    assert tuned.status_code == 200, tuned.text
    limits = tuned.json()["rate_limits"]
    assert limits["personalize"]["user"] == {"limit": 8, "window_seconds": 86400}
    assert limits["translate"]["user"] == {"limit": 5, "window_seconds": 86400}  # the default
    status = (await c.get("/v1/rate-limit/status", headers=school.student["auth"])).json()
    answer_user = next(
        w for w in status["windows"] if w["route_class"] == "answer" and w["scope"] == "user"
    )
    assert answer_user["limit"] == 2
    ask = {"query": "What does chlorophyll absorb?"}
    for _ in range(2):
        assert (
            await c.post("/v1/answer", json=ask, headers=school.student["auth"])
        ).status_code == 200
    third = await c.post("/v1/answer", json=ask, headers=school.student["auth"])
    assert third.status_code == 429 and third.headers["retry-after"]
    assert third.json()["error"]["code"] == "rate_limited"
    # The operator is not held to the ceilings; null returns a count to the deployment's.
    raised = await c.patch(
        path, json={"rate_limits": {"personalize": {"user": 50}}}, headers=OPERATOR
    )
    assert raised.json()["rate_limits"]["personalize"]["user"]["limit"] == 50
    reset = await c.patch(
        path, json={"rate_limits": {"answer": {"user": None}}}, headers=school.admin
    )
    assert reset.json()["rate_limits"]["answer"]["user"]["limit"] == 20
    other_tenant, other_admin = await new_tenant(c, "elsewhere")
    untouched = await c.get("/v1/rate-limit/status", headers=other_admin)
    answer_limit = next(
        w["limit"]
        for w in untouched.json()["windows"]
        if w["route_class"] == "answer" and w["scope"] == "user"
    )
    assert answer_limit == 20 and other_tenant != school.tenant
