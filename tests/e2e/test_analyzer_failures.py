"""An analyzer that misbehaves — times out, fails, answers what breaks the contract — leaves a
failed analysis with why, and nothing half-saved; a tenant's analyzer URL is held to the SSRF
policy; with no analyzer configured, analysis is a clear 501. The analyzer is a
transport-level fake (httpx.MockTransport) speaking the contract's wire format."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.http import EmulatedHttp
from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN, new_tenant
from tests.e2e.workspace_helpers import practice_take, upload_recording

TAKE = practice_take(seconds=3.0)
FAKE = "http://analyzer.test/v1/analyze"
seen: list[dict[str, Any]] = []


def good(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "analyzer": {"name": "fake-model", "version": "7", "kind": "model"},
        "dimensions": [
            {"name": "phrasing", "score": 0.4, "uncertainty": 0.2},
            {"name": "loudness", "score": 0.8, "uncertainty": 0.1, "value": -18, "unit": "dBFS"},
            {"name": "not_asked", "score": 0.5, "uncertainty": 0.5},
        ],
        "segments": [{"start_s": 0, "end_s": 2.5, "dimensions": [], "note": "opening"}],
    }


BEHAVIOURS: dict[str, Callable[[dict[str, Any]], httpx.Response]] = {
    "good": lambda r: httpx.Response(200, json=good(r)),
    "timeout": lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow")),
    "down": lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")),
    "500": lambda r: httpx.Response(500, text="Traceback: secret internals"),
    "not_json": lambda r: httpx.Response(200, text="<html>ok</html>"),
    "score_out_of_range": lambda r: httpx.Response(
        200, json={**good(r), "dimensions": [{"name": "loudness", "score": 1.7, "uncertainty": 0}]}
    ),
    "nan": lambda r: httpx.Response(
        200,
        content=json.dumps(
            {**good(r), "dimensions": [{"name": "loudness", "score": math.nan, "uncertainty": 0}]}
        ).encode(),
    ),
    "segment_past_the_end": lambda r: httpx.Response(
        200, json={**good(r), "segments": [{"start_s": 1, "end_s": 99}]}
    ),
    "backwards_segment": lambda r: httpx.Response(
        200, json={**good(r), "segments": [{"start_s": 2, "end_s": 1}]}
    ),
    "too_many_segments": lambda r: httpx.Response(
        200,
        json={
            **good(r),
            "segments": [{"start_s": 0, "end_s": 0.001 * (i + 1)} for i in range(501)],
        },
    ),
    "no_analyzer_block": lambda r: httpx.Response(200, json={"dimensions": []}),
    "refused": lambda r: httpx.Response(
        422, json={"error": {"code": "unsupported", "message": "this codec is not supported"}}
    ),
}
state = {"mode": "good"}


def handler(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    seen.append({"url": str(request.url), "headers": dict(request.headers), "body": body})
    return BEHAVIOURS[state["mode"]](body)


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    seen.clear()
    return build_mesh(
        data_dir,
        operator_token=OPERATOR_TOKEN,
        ai=ai,
        http=EmulatedHttp(transport=httpx.MockTransport(handler)),
        vars={
            "EDGERAG_ANALYZER_URL": FAKE,
            "EDGERAG_ANALYZER_TOKEN": "an-secret",
            "EDGERAG_ANALYZER_TIMEOUT_S": "2",
        },
    )


async def _ready(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    _, auth = await new_tenant(client, "analyzer")
    dims = [
        {"name": "loudness", "label": "Loudness"},
        {"name": "phrasing", "label": "Phrasing", "group": "interpretive"},
        {"name": "tone_color", "label": "Tone color", "group": "interpretive"},
    ]
    assert (
        await client.patch("/v1/settings", json={"recording_dimensions": dims}, headers=auth)
    ).status_code == 200
    recording = await upload_recording(client, auth, TAKE)
    assert recording.status_code == 200, recording.text
    return auth, f"/v1/recordings/{recording.json()['id']}"


async def test_the_contract_on_the_wire(client: httpx.AsyncClient) -> None:
    auth, path = await _ready(client)
    state["mode"] = "good"
    done = await client.post(f"{path}/analysis", headers=auth)
    assert done.status_code == 201, done.text
    body = done.json()
    assert [d["name"] for d in body["dimensions"]] == ["phrasing", "loudness"]
    assert body["dimensions"][0]["group"] == "interpretive"
    assert body["unmeasured"] == ["tone_color"] and body["ignored"] == ["not_asked"]
    assert body["analyzer"] == {"name": "fake-model", "version": "7", "kind": "model"}
    (call,) = seen
    assert call["url"] == FAKE and call["headers"]["authorization"] == "Bearer an-secret"
    sent = call["body"]
    assert sent["contract"] == "edgerag.analyzer/v1"
    assert sent["recording"]["format"] == "wav" and abs(sent["recording"]["duration_s"] - 3) < 0.01
    assert "X-Amz-Signature=" in sent["recording"]["url"]  # a presigned GET, not the bytes
    assert [d["name"] for d in sent["dimensions"]] == ["loudness", "phrasing", "tone_color"]
    health = (await client.get("/health")).json()
    (llm,) = [w for w in health["workers"] if w["worker"] == "llm"]
    assert llm["analyzer"] == {"url": FAKE, "token": True}  # named, its secret never shown
    assert "an-secret" not in json.dumps(health)


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("timeout", 504, "analyzer_timeout"),
        ("down", 502, "analyzer_unavailable"),
        ("500", 502, "analyzer_failed"),
        ("not_json", 502, "analyzer_malformed"),
        ("score_out_of_range", 502, "analyzer_malformed"),
        ("nan", 502, "analyzer_malformed"),
        ("segment_past_the_end", 502, "analyzer_malformed"),
        ("backwards_segment", 502, "analyzer_malformed"),
        ("too_many_segments", 502, "analyzer_malformed"),
        ("no_analyzer_block", 502, "analyzer_malformed"),
        ("refused", 422, "recording_refused"),
    ],
)
async def test_a_misbehaving_analyzer_leaves_a_failed_run_and_nothing_else(
    client: httpx.AsyncClient, mode: str, status: int, code: str
) -> None:
    auth, path = await _ready(client)
    state["mode"] = mode
    failed = await client.post(f"{path}/analysis", headers=auth)
    assert failed.status_code == status, failed.text
    error = failed.json()["error"]
    assert error["code"] == code and "secret internals" not in error["message"]
    analysis_id = error["details"]["analysis_id"]
    stored = await client.get(f"{path}/analysis/{analysis_id}", headers=auth)
    assert stored.status_code == 200
    run = stored.json()
    assert run["status"] == "failed" and run["error"]["code"] == code
    assert run["dimensions"] == [] and run["segments"] == [] and run["analyzer"] is None
    recording = (await client.get(path, headers=auth)).json()
    assert recording["latest_analysis"]["status"] == "failed"
    feedback = await client.post(f"{path}/feedback", headers=auth)
    assert feedback.status_code == 409  # a failed run is nothing to give feedback on


async def test_a_tenant_analyzer_must_be_public_https(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "analyzer-url")
    for url, why in (
        ("http://analyzer.example.com/v1", "https url"),
        ("https://127.0.0.1/v1", "non-public"),
        ("https://localhost/v1", "public"),
        ("https://10.0.0.8/analyze", "non-public"),
        ("ftp://example.com/", "scheme"),
    ):
        reply = await client.patch("/v1/settings", json={"analyzer_url": url}, headers=auth)
        assert reply.status_code == 422, (url, reply.text)
        message = reply.json()["error"]["message"].lower()
        assert message.startswith("analyzer_url:") and why in message, reply.text
    ok = await client.patch(
        "/v1/settings", json={"analyzer_url": "https://analyzer.example.com/v1"}, headers=auth
    )
    assert ok.status_code == 200 and ok.json()["analyzer_url"] == "https://analyzer.example.com/v1"
    reset = await client.patch("/v1/settings", json={"analyzer_url": None}, headers=auth)
    assert reset.json()["analyzer_url"] is None


async def test_no_analyzer_configured_is_a_501(data_dir: Path, ai: Any) -> None:
    from tests.e2e.conftest import client_for

    bare = build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai)
    async with client_for(bare) as client:
        _, auth = await new_tenant(client, "no-analyzer")
        recording = await upload_recording(client, auth, TAKE)
        reply = await client.post(f"/v1/recordings/{recording.json()['id']}/analysis", headers=auth)
        assert reply.status_code == 501 and reply.json()["error"]["code"] == "not_enabled"
    await bare.drain()
