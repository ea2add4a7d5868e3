"""Learning features over HTTP: reading progress as the student, their teacher, another
student and an admin see it; questions counted from answers and chat; per-feature rate limits
and a tenant's own limits within the operator's ceilings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import client_for, new_tenant, wait_ready
from tests.e2e.identity import OPERATOR, add_user, tuned_mesh
from tests.e2e.openai_wire import completion

LESSON_PDF = (Path(__file__).resolve().parents[2] / "examples" / "lesson.pdf").read_bytes()
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


async def test_a_page_range_is_a_section(school: SimpleNamespace) -> None:
    c = school.client
    pdf = LESSON_PDF
    upload = await c.post(
        "/v1/documents",
        files={"file": ("lesson.pdf", pdf, "application/pdf")},
        data={"title": "Flight"},
        headers=school.teacher["auth"],
    )
    doc = upload.json()["document_id"]
    await wait_ready(c, school.teacher["auth"], doc)
    both = await c.get(
        f"/v1/documents/{doc}/sections", params={"section": "pages 1-2"}, headers=school.admin
    )
    section = both.json()["section"]
    assert (section["page_start"], section["page_end"], section["char_start"]) == (1, 2, 0)
    assert section["char_end"] == both.json()["text_length"]
    second = await c.get(
        f"/v1/documents/{doc}/sections", params={"section": "page 2"}, headers=school.admin
    )
    assert (
        second.json()["section"]["page_start"] == 2 and second.json()["section"]["char_start"] > 0
    )
    marked = await c.post(
        "/v1/me/progress",
        json={"document_id": doc, "section": "page 2", "completed": True},
        headers=school.student["auth"],
    )
    assert marked.json()["documents"][0]["sections"][0]["section"] == "page 2"
    missing = await c.get(
        f"/v1/documents/{doc}/sections", params={"section": "pages 2-9"}, headers=school.admin
    )
    assert missing.status_code == 404


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


async def _tokens_used(c: httpx.AsyncClient, auth: dict[str, str]) -> int:
    return int((await c.get("/v1/rate-limit/status", headers=auth)).json()["token_budget"]["used"])


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit-remaining"])


async def test_personalize_caches_per_version_and_level_and_cites_the_original(
    school: SimpleNamespace,
) -> None:
    c, student = school.client, school.student
    await c.put("/v1/me/context", json={"level": "beginner"}, headers=student["auth"])
    ask = {"document_id": school.doc, "section": "Plants > Photosynthesis"}
    first = await c.post("/v1/personalize", json=ask, headers=student["auth"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["level"] == "beginner" and not body["cached"]  # from the reader's context
    assert body["blocks"][0] == {
        "kind": "heading",
        "text": "## Photosynthesis",
        "citations": [],
        "grounded": True,
    }
    paragraph = next(b for b in body["blocks"] if b["kind"] == "paragraph")
    assert paragraph["citations"] == [1]
    citation = body["citations"][0]
    assert CHAPTER[citation["char_start"] : citation["char_end"]] == citation["quote"]
    assert any(b["kind"] == "note" and not b["grounded"] for b in body["blocks"])
    assert "[1]" in body["content"] and "> **Note:**" in body["content"]
    used = await _tokens_used(c, student["auth"])
    assert used > 0 and body["usage"]["total_tokens"] > 0
    left = _remaining(first)
    again = await c.post("/v1/personalize", json=ask, headers=student["auth"])
    assert again.json()["cached"] and again.json()["usage"]["total_tokens"] == 0
    assert again.json()["content"] == body["content"]
    assert await _tokens_used(c, student["auth"]) == used  # no tokens
    status = (await c.get("/v1/rate-limit/status", headers=student["auth"])).json()
    personal = next(
        w for w in status["windows"] if w["route_class"] == "personalize" and w["scope"] == "user"
    )
    assert personal["used"] == 1 and left == 4  # the cached call gave its hit back
    advanced = await c.post(
        "/v1/personalize", json={**ask, "level": "advanced"}, headers=student["auth"]
    )
    assert not advanced.json()["cached"] and advanced.json()["level"] == "advanced"
    # A new version of the document invalidates what was cached for the old one.
    new = CHAPTER.replace("reflects green light", "reflects green and some yellow light")
    replaced = await c.put(
        f"/v1/documents/{school.doc}",
        files={"file": ("plants.md", new.encode(), "text/markdown")},
        headers=school.teacher["auth"],
    )
    assert replaced.status_code == 202, replaced.text
    await wait_ready(c, school.teacher["auth"], school.doc)
    fresh = await c.post("/v1/personalize", json=ask, headers=student["auth"])
    assert fresh.status_code == 200 and not fresh.json()["cached"]
    assert fresh.json()["version"] == 2
    # Bad input.
    for bad, status_code in (
        ({**ask, "section": "Fungi"}, 404),
        ({"document_id": school.private, "section": "Plants"}, 404),
        ({**ask, "level": "expert"}, 422),
        ({"document_id": school.doc, "section": ""}, 422),
    ):
        refused = await c.post("/v1/personalize", json=bad, headers=student["auth"])
        assert refused.status_code == status_code, (bad, refused.text)


async def test_translate_to_urdu_keeps_structure_caches_and_limits(
    school: SimpleNamespace,
) -> None:
    c, student = school.client, school.student
    ask = {"document_id": school.doc, "section": "Plants", "target_language": "ur"}
    first = await c.post("/v1/translate", json=ask, headers=student["auth"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["direction"] == "rtl" and body["target_language"] == "ur"
    kinds = [b["kind"] for b in body["blocks"]]
    assert kinds[:2] == ["heading", "paragraph"] and kinds.count("heading") == 3
    assert body["blocks"][0]["text"] == "# Plants"  # the marker kept; a name stays as written
    assert body["blocks"][1]["text"] != "Plants make their own food."
    assert "Plants make their own food." not in body["content"]
    assert body["generated_by"]["model"] == "@cf/meta/m2m100-1.2b"
    health = (await c.get("/health")).text  # locally a stand-in, and /health says so
    assert "stand-in: pseudo-translation by script mapping (not a translation)" in health
    again = await c.post("/v1/translate", json=ask, headers=student["auth"])
    assert again.json()["cached"] and again.json()["content"] == body["content"]
    text = await c.post(
        "/v1/translate",
        json={"text": "The 3 roots drink water.", "target_language": "fr"},
        headers=student["auth"],
    )
    assert text.json()["direction"] == "ltr" and "3" in text.json()["content"]
    for bad in (
        {"text": "hello", "target_language": "xx"},
        {"text": "   ", "target_language": "ur"},
        {"section": "Plants", "target_language": "ur"},
        {"text": "word " * 3000, "target_language": "ur"},
    ):
        refused = await c.post("/v1/translate", json=bad, headers=student["auth"])
        assert refused.status_code in (413, 422), (bad, refused.text)
    hidden = await c.post(
        "/v1/translate", json={**ask, "document_id": school.private}, headers=student["auth"]
    )
    assert hidden.status_code == 404
    # 5 per user per day: the two translations so far count, the cached one and the refusals
    # gave their hits back.
    for n in range(3):
        assert (
            await c.post(
                "/v1/translate",
                json={"text": f"Leaves are green ({n}).", "target_language": "ar"},
                headers=student["auth"],
            )
        ).status_code == 200
    over = await c.post(
        "/v1/translate",
        json={"text": "Roots grow.", "target_language": "ar"},
        headers=student["auth"],
    )
    assert over.status_code == 429 and over.headers["retry-after"]
    assert over.json()["error"]["code"] == "rate_limited"


class Translator:
    """An OpenAI-compatible model answering the translate task; `mode` picks how."""

    def __init__(self) -> None:
        self.mode, self.calls = "untranslated", 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        import json

        self.calls += 1
        body = json.loads(request.content)
        assert body["response_format"]["json_schema"]["name"] in (
            "translate_blocks",
            "personalize_section",
        )
        user = body["messages"][-1]["content"]
        if body["response_format"]["json_schema"]["name"] == "personalize_section":
            blocks = [
                {
                    "kind": "paragraph",
                    "text": "Plants are purple.",
                    "source": 1,
                    "quote": "Plants are purple",
                }
            ]  # rests on nothing the section says
        else:
            blocks = json.loads(user.removeprefix("Blocks:\n"))
            if self.mode == "translated":
                blocks = [{**b, "text": b["text"].upper() + " (ur)"} for b in blocks]
            elif self.mode == "truncated":
                blocks = [{**b, "text": b["text"][:2]} for b in blocks]
        content = json.dumps({"blocks": blocks})
        return completion(content, (80, 40))


async def test_a_bad_model_translation_or_rewrite_is_refused_and_not_cached(
    data_dir: Path, ai: Any
) -> None:
    from emulator.http import EmulatedHttp
    from emulator.mesh import build_mesh
    from tests.e2e.conftest import OPERATOR_TOKEN
    from tests.e2e.identity import FAST_HASH

    fake = Translator()
    mesh = build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(httpx.MockTransport(fake)),
        vars={
            **FAST_HASH,
            "EDGERAG_LLM_PROVIDERS": "openai",
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": "https://openai.fake",
            "EDGERAG_OPENAI_MODEL": "fake-model",
        },
    )
    async with client_for(mesh) as c:
        _, admin = await new_tenant(c, "translations")
        settings = await c.patch(
            "/v1/settings", json={"translation_provider": "llm"}, headers=admin
        )
        assert settings.status_code == 200 and settings.json()["translation_provider"] == "llm"
        ask = {"text": "Leaves make sugar.\n\n- Roots drink.", "target_language": "ur"}
        for mode in ("untranslated", "truncated"):
            fake.mode = mode
            bad = await c.post("/v1/translate", json=ask, headers=admin)
            assert bad.status_code == 502, (mode, bad.text)
            assert bad.json()["error"]["code"] == "translation_invalid"
        fake.mode = "translated"
        good = await c.post("/v1/translate", json=ask, headers=admin)
        assert good.status_code == 200 and not good.json()["cached"]  # failures were not cached
        assert good.json()["generated_by"]["model"] == "fake-model"
        assert [b["kind"] for b in good.json()["blocks"]] == ["paragraph", "list_item"]
        calls = fake.calls
        again = await c.post("/v1/translate", json=ask, headers=admin)
        assert again.json()["cached"] and fake.calls == calls
        upload = await c.post(
            "/v1/documents",
            files={"file": ("p.md", CHAPTER.encode(), "text/markdown")},
            data={"title": "Plants"},
            headers=admin,
        )
        doc = upload.json()["document_id"]
        await wait_ready(c, admin, doc)
        ask_rewrite = {"document_id": doc, "section": "Photosynthesis"}
        rewrite = await c.post("/v1/personalize", json=ask_rewrite, headers=admin)
        assert rewrite.status_code == 502, rewrite.text  # its one paragraph rests on nothing
        assert rewrite.json()["error"]["code"] == "model_output_invalid"
        retry = await c.post("/v1/personalize", json=ask_rewrite, headers=admin)
        assert retry.status_code == 502  # nothing was cached
        unnamed = await c.post(
            "/v1/personalize", json={"document_id": doc, "section": ""}, headers=admin
        )
        assert unnamed.status_code == 422  # a section is named
        await mesh.drain()
