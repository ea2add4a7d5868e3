"""Recordings over HTTP: a generated practice take uploaded with a presigned PUT, confirmed from
its WAV headers, analysed by the dev server's signal analyzer (stable measured values, the
tenant's dimension set, unmeasured dimensions absent), then cited, structured feedback — and
who may see, analyse, ask about and delete it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.dev import AsgiGateway
from emulator.mesh import Mesh
from tests.e2e.conftest import ingest, new_tenant
from tests.e2e.identity import add_user
from tests.e2e.workspace_helpers import SECONDS, analyzing_mesh, practice_take, upload_recording

TAKE = practice_take()
# The signal analyzer's values for TAKE (value, tolerance): 2 onsets/s, an even pulse, a
# steady A4 (cents of wobble), ~21 dB between soft and loud.
MEASURED = {
    "loudness": (-24.42, 0.1),
    "dynamic_range": (21.0, 0.3),
    "onset_density": (2.0, 0.01),
    "tempo_stability": (1.0, 0.01),
    "pitch_stability": (1.71, 0.3),
}
PRACTICE_GUIDE = (
    "# Practice guide\n\n"
    "## Tempo\n\n"
    "Tempo stability improves when you practice with a metronome at a slow tempo. "
    "Raise the metronome by four beats per minute only after three clean repetitions.\n\n"
    "## Dynamics\n\n"
    "Dynamic range grows by practicing long crescendos from pianissimo to forte. "
    "Record yourself and listen for the loudness of the soft passages.\n\n"
    "## Pitch\n\n"
    "Pitch stability comes from long tones held against a drone or a tuner. "
    "Hold each note for eight beats and keep the pitch steady without vibrato.\n"
)
# A teacher platform's set: six technical and six interpretive dimensions. The signal analyzer
# measures five of them; the other seven must come back absent, listed as unmeasured.
DIMENSIONS = [
    {"name": n, "label": n.replace("_", " ").title(), "group": g}
    for n, g in [
        ("loudness", "technical"),
        ("dynamic_range", "technical"),
        ("onset_density", "technical"),
        ("tempo_stability", "technical"),
        ("pitch_stability", "technical"),
        ("intonation", "technical"),
        ("phrasing", "interpretive"),
        ("articulation", "interpretive"),
        ("tone_color", "interpretive"),
        ("character", "interpretive"),
        ("expression", "interpretive"),
        ("style", "interpretive"),
    ]
]


@pytest.fixture
def wired(data_dir: Path, ai: Any) -> tuple[Mesh, AsgiGateway]:
    return analyzing_mesh(data_dir, ai)


@pytest.fixture
def mesh(wired: tuple[Mesh, AsgiGateway]) -> Mesh:
    return wired[0]


def _values(analysis: dict[str, Any]) -> dict[str, float]:
    return {d["name"]: d["value"] for d in analysis["dimensions"]}


async def test_a_take_is_uploaded_analysed_and_given_cited_feedback(
    client: httpx.AsyncClient,
) -> None:
    tenant, admin = await new_tenant(client, "recordings")
    teacher = await add_user(client, admin, tenant, "teacher", "t@r.test")
    student = await add_user(client, admin, tenant, "student", "s@r.test")
    classmate = await add_user(client, admin, tenant, "student", "c@r.test")
    await client.post(
        "/v1/relationships", json={"student_id": student["id"]}, headers=teacher["auth"]
    )
    await ingest(client, admin, "Practice guide", PRACTICE_GUIDE)
    dims = await client.patch("/v1/settings", json={"recording_dimensions": DIMENSIONS},
                              headers=admin)  # fmt: skip
    assert dims.status_code == 200, dims.text
    assert len(dims.json()["recording_dimensions"]) == 12

    confirmed = await upload_recording(client, student["auth"], TAKE)
    assert confirmed.status_code == 200, confirmed.text
    recording = confirmed.json()
    assert recording["status"] == "ready" and recording["format"] == "wav"
    assert recording["codec"] == "pcm" and recording["sample_rate"] == 22050
    assert recording["channels"] == 1 and abs(recording["duration_s"] - SECONDS) < 0.01
    path = f"/v1/recordings/{recording['id']}"

    ran = await client.post(f"{path}/analysis", headers=student["auth"])
    assert ran.status_code == 201, ran.text
    analysis = ran.json()
    assert analysis["status"] == "done" and analysis["analyzer"]["kind"] == "signal"
    measured = {d["name"] for d in analysis["dimensions"]}
    assert measured == {
        "loudness",
        "dynamic_range",
        "onset_density",
        "tempo_stability",
        "pitch_stability",
    }
    assert set(analysis["unmeasured"]) == {d["name"] for d in DIMENSIONS} - measured
    for d in analysis["dimensions"]:
        assert 0 <= d["score"] <= 1 and 0 < d["uncertainty"] <= 1 and d["group"] == "technical"
    values = _values(analysis)
    # What the take was made of (tests/fixtures/audiogen.py): 2 notes a second, perfectly even,
    # one steady pitch, a crescendo in its second half — measured as recorded here.
    for name, (expected, tolerance) in MEASURED.items():
        assert abs(values[name] - expected) <= tolerance, (name, values)
    segments = analysis["segments"]
    assert len(segments) >= 2 and segments[-1]["end_s"] <= SECONDS + 0.05
    # Stable: the same recording measures the same again.
    again = (await client.post(f"{path}/analysis", headers=teacher["auth"])).json()
    assert _values(again) == values and again["requested_by"] == teacher["id"]
    history = (await client.get(f"{path}/analysis", headers=student["auth"])).json()["analyses"]
    assert [a["id"] for a in history] == [again["id"], analysis["id"]]

    made = await client.post(f"{path}/feedback", json={}, headers=student["auth"])
    assert made.status_code == 201, made.text
    feedback = made.json()
    assert feedback["analysis_id"] == again["id"] and feedback["cached"] is False
    assert feedback["overall"]["text"] and feedback["generated_by"]["provider"] == "workers-ai"
    statements = [
        feedback["overall"],
        *feedback["strengths"],
        *feedback["improvements"],
        *feedback["practice"],
        *[s["observation"] for s in feedback["segments"]],
        *[s["suggestion"] for s in feedback["segments"] if s["suggestion"]],
    ]
    knowledge = [s for s in statements if s["basis"] == "knowledge"]
    assert knowledge, feedback
    numbers = {c["n"] for c in feedback["citations"]}
    for s in statements:
        if s["basis"] == "knowledge":
            assert s["citations"] and set(s["citations"]) <= numbers, s
        else:
            assert s["dimension"] in measured, s  # never about an unmeasured dimension
    for c in feedback["citations"]:
        assert c["quote"] in PRACTICE_GUIDE and c["title"] == "Practice guide"
    # Cached per (analysis, model, prompt version): asking again is free and the same.
    cached = await client.post(f"{path}/feedback", json={}, headers=teacher["auth"])
    assert cached.status_code == 200 and cached.json()["cached"] is True
    assert cached.json()["id"] == feedback["id"]
    listed = (await client.get(f"{path}/feedback", headers=teacher["auth"])).json()["feedback"]
    assert [f["id"] for f in listed] == [feedback["id"]]

    # The tool, for the owner and their teacher; a classmate learns nothing.
    for who in (student, teacher):
        tool = await client.post(
            "/v1/tools/get_performance_analysis",
            json={"user_id": student["id"]},
            headers=who["auth"],
        )
        assert tool.status_code == 200, tool.text
        result = tool.json()["result"]
        assert [r["recording_id"] for r in result["recordings"]] == [recording["id"]]
        assert {t["name"] for t in result["trends"]} == measured
        assert {d["name"]: d["value"] for d in result["recordings"][0]["dimensions"]} == values
    nosy = await client.post(
        "/v1/tools/get_performance_analysis",
        json={"recording_id": recording["id"]},
        headers=classmate["auth"],
    )
    assert nosy.status_code == 404
    listed_by_classmate = await client.post(
        "/v1/tools/get_performance_analysis",
        json={"user_id": student["id"]},
        headers=classmate["auth"],
    )
    assert listed_by_classmate.json()["result"]["recordings"] == []
    for route in (path, f"{path}/analysis", f"{path}/feedback"):
        assert (await client.get(route, headers=classmate["auth"])).status_code == 404
    assert (await client.post(f"{path}/analysis", headers=classmate["auth"])).status_code == 404
    assert (await client.post(f"{path}/feedback", headers=classmate["auth"])).status_code == 404
    # Lists: the student's own, the teacher's students', the admin's all; filters hold.
    for who, count in ((student, 1), (teacher, 1), (classmate, 0)):
        seen = (await client.get("/v1/recordings", headers=who["auth"])).json()["recordings"]
        assert len(seen) == count
    filtered = await client.get("/v1/recordings?format=mp3", headers=admin)
    assert filtered.json()["recordings"] == []
    assert (await client.get("/v1/recordings?format=aiff", headers=admin)).status_code == 422
    # Another tenant sees nothing of it.
    _, elsewhere = await new_tenant(client, "recordings-elsewhere")
    assert (await client.get(path, headers=elsewhere)).status_code == 404

    # Only the owner (or an admin) deletes; its analyses and feedback go with it.
    assert (await client.delete(path, headers=teacher["auth"])).status_code == 403
    assert (await client.delete(path, headers=student["auth"])).status_code == 200
    assert (await client.get(path, headers=student["auth"])).status_code == 404
    assert (await client.get(f"{path}/feedback", headers=student["auth"])).status_code == 404


async def test_feedback_needs_an_analysis(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "recordings-feedback")
    recording = (await upload_recording(client, auth, TAKE)).json()
    reply = await client.post(f"/v1/recordings/{recording['id']}/feedback", headers=auth)
    assert reply.status_code == 409 and reply.json()["error"]["code"] == "analysis_required"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"", "audio/wav", 422, "empty_audio"),
        (b"%PDF-1.4\n" + b"0" * 2000, "audio/wav", 422, "audio_type_mismatch"),
        (TAKE[:40], "audio/wav", 422, "unreadable_audio"),
        (TAKE, "audio/mpeg", 422, "audio_type_mismatch"),
        (TAKE, "video/mp4", 422, "unsupported_audio_type"),
    ],
)
async def test_bad_audio_is_refused_and_kept_nowhere(
    client: httpx.AsyncClient, mesh: Mesh, data: bytes, content_type: str, status: int, code: str
) -> None:
    _, auth = await new_tenant(client, "recordings-bad")
    reply = await upload_recording(client, auth, data, content_type=content_type)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code, reply.text
    listed = (await client.get("/v1/recordings", headers=auth)).json()["recordings"]
    if listed:  # created, then refused at confirm: rejected with why, its bytes deleted
        (rejected,) = listed
        assert rejected["status"] == "rejected" and code in rejected["error"]
        keys = [b.key for b in await mesh.stores["R2"].list("t/")]
        assert not [k for k in keys if "/uploads/" in k]
        again = await client.post(f"/v1/recordings/{rejected['id']}/analysis", headers=auth)
        assert again.status_code == 409


async def test_confirm_before_upload_and_a_changed_file(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "recordings-confirm")
    made = await upload_recording(client, auth, TAKE, confirm=False)
    recording_id = made.json()["recording"]["id"]
    other = (await upload_recording(client, auth, TAKE, confirm=False)).json()
    # Upload nothing for a third one, then confirm it.
    early = await client.post(
        "/v1/recordings",
        json={
            "filename": "x.wav",
            "content_type": "audio/wav",
            "size_bytes": len(TAKE),
            "sha256": hashlib.sha256(TAKE).hexdigest(),
        },
        headers=auth,
    )
    early_id = early.json()["recording"]["id"]
    nothing = await client.post(f"/v1/recordings/{early_id}/confirm", headers=auth)
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "upload_missing"
    done = await client.post(f"/v1/recordings/{recording_id}/confirm", headers=auth)
    assert done.status_code == 200 and done.json()["status"] == "ready"
    assert other["recording"]["status"] == "pending"
    analysis = await client.post(f"/v1/recordings/{early_id}/analysis", headers=auth)
    assert analysis.status_code == 409 and analysis.json()["error"]["code"] == (
        "recording_not_ready"
    )


async def test_analysis_and_feedback_are_rate_limited_in_their_own_classes(
    client: httpx.AsyncClient,
) -> None:
    """The `analysis` and `feedback` classes (README: 30 and 20 a day per user) count as their
    own windows; a tenant admin lowers them, and a cached feedback gives its hit back."""
    tenant, admin = await new_tenant(client, "recordings-limits")
    await ingest(client, admin, "Practice guide", PRACTICE_GUIDE)
    tuned = await client.patch(
        f"/v1/tenants/{tenant}",
        json={"rate_limits": {"analysis": {"user": 1}, "feedback": {"user": 2}}},
        headers=admin,
    )
    assert tuned.status_code == 200, tuned.text
    recording = (await upload_recording(client, admin, TAKE)).json()
    path = f"/v1/recordings/{recording['id']}"
    assert (await client.post(f"{path}/analysis", headers=admin)).status_code == 201
    second = await client.post(f"{path}/analysis", headers=admin)
    assert second.status_code == 429 and second.json()["error"]["code"] == "rate_limited"
    assert '"analysis-user";q=1' in second.headers["ratelimit-policy"]
    first = await client.post(f"{path}/feedback", json={}, headers=admin)
    assert first.status_code == 201, first.text
    cached = await client.post(f"{path}/feedback", json={}, headers=admin)
    assert cached.status_code == 200 and cached.json()["cached"] is True  # refunded
    other = await client.post(f"{path}/feedback", json={"focus": "tempo"}, headers=admin)
    assert other.status_code == 201, other.text  # the cached one did not use up the second
    third = await client.post(f"{path}/feedback", json={"focus": "pitch"}, headers=admin)
    assert third.status_code == 429, third.text
