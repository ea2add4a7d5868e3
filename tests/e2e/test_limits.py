"""Rate limits and token budgets over HTTP, counted in D1.

The concurrency tests fire N requests at once against a limit of M and require exactly M
admitted: the counter is one atomic upsert, so no interleaving can admit more.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import assert_error, ingest, new_tenant
from tests.e2e.identity import OPERATOR, PASSWORD, add_user, tuned_mesh

LIMITS = {
    "search": {"user": [5, 3600], "tenant": [8, 3600]},
    "answer": {"user": [50, 3600]},
    "login": {"ip_email": [3, 900], "ip": [6, 900]},
}


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai, EDGERAG_RATE_LIMITS=json.dumps(LIMITS))


# `client` is conftest's: it picks up this module's `mesh`.


async def search(client: httpx.AsyncClient, auth: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/search", json={"query": "anything"}, headers=auth)


async def test_parallel_requests_admit_exactly_the_limit(client: httpx.AsyncClient) -> None:
    _, admin = await new_tenant(client, "burst")
    responses = await asyncio.gather(*(search(client, admin) for _ in range(20)))
    admitted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(admitted) == 5 and len(refused) == 15
    # Successful responses carry what is left; the last admitted one has none left.
    assert sorted(int(r.headers["ratelimit-remaining"]) for r in admitted) == [0, 1, 2, 3, 4]
    for response in admitted:
        assert response.headers["ratelimit-limit"] == "5"
    for response in refused:
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["ratelimit-limit"] == "5"
        assert response.headers["ratelimit-remaining"] == "0"
        assert int(response.headers["ratelimit-reset"]) == int(response.headers["retry-after"])
    # Other route classes are counted apart: this user can still do other things.
    assert (await client.get("/v1/auth/me", headers=admin)).status_code == 200
    # And another tenant is untouched.
    _, other = await new_tenant(client, "calm")
    assert (await search(client, other)).status_code == 200


async def test_tenant_window_caps_all_users_together(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "shared")
    users = [await add_user(client, admin, tenant_id, "student", f"s{i}@x.org") for i in range(4)]
    responses = await asyncio.gather(*(search(client, u["auth"]) for u in users for _ in range(4)))
    assert sum(r.status_code == 200 for r in responses) == 8  # the tenant limit, not 4 × 5
    refused = next(r for r in responses if r.status_code == 429)
    assert "per tenant" in refused.json()["error"]["message"]


async def test_status_shows_the_callers_windows(client: httpx.AsyncClient) -> None:
    _, admin = await new_tenant(client, "status")
    for _ in range(2):
        await search(client, admin)
    status = await client.get("/v1/rate-limit/status", headers=admin)
    assert status.status_code == 200, status.text
    windows = {(w["route_class"], w["scope"]): w for w in status.json()["windows"]}
    assert windows[("search", "user")] | {"reset_seconds": 0} == {
        "route_class": "search",
        "scope": "user",
        "limit": 5,
        "window_seconds": 3600,
        "used": 2,
        "remaining": 3,
        "reset_seconds": 0,
    }
    assert windows[("answer", "user")]["used"] == 0
    again = await client.get("/v1/rate-limit/status", headers=admin)  # reading does not count
    assert {(w["route_class"], w["scope"]): w["used"] for w in again.json()["windows"]}[
        ("search", "user")
    ] == 2


async def test_brute_force_login_is_limited_per_ip_and_email(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "brute")
    await add_user(client, admin, tenant_id, "student", "victim@x.org")  # 1 login
    body = {"email": "victim@x.org", "password": "wrong guess 123", "tenant_id": tenant_id}
    attempts = await asyncio.gather(*(client.post("/v1/auth/login", json=body) for _ in range(6)))
    codes = sorted(r.status_code for r in attempts)
    assert codes == [401, 401, 429, 429, 429, 429]  # 3 per IP+email, the first was the real login
    refused = next(r for r in attempts if r.status_code == 429)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) > 0
    # Even the right password is refused until the window resets.
    right = await client.post("/v1/auth/login", json={**body, "password": PASSWORD})
    assert_error(right, 429)
    # Another email from the same IP still works until the per-IP window (6) runs out.
    await add_user(client, admin, tenant_id, "student", "other@x.org")
    metrics = (await client.get("/metrics", headers=OPERATOR)).text
    assert (
        'edgerag_rate_limited_total{route_class="login",scope="ip_email",worker="gateway"}'
        in metrics
    )
    # A different client IP has its own windows.
    other_ip = await client.post(
        "/v1/auth/login",
        json={**body, "password": PASSWORD},
        headers={"cf-connecting-ip": "203.0.113.9"},
    )
    # ASGI dev front overwrites CF-Connecting-IP with the peer address: spoofing does not help.
    assert_error(other_ip, 429)


async def test_daily_token_budget(client: httpx.AsyncClient, mesh: Mesh) -> None:
    tenant_id, admin = await new_tenant(client, "budget")
    await ingest(
        client,
        admin,
        "Biology",
        "Photosynthesis takes place in the chloroplasts of plant cells. "
        "Chlorophyll absorbs red and blue light and reflects green light.",
    )
    first = await client.post(
        "/v1/answer", json={"query": "Which light does chlorophyll absorb?"}, headers=admin
    )
    assert first.status_code == 200, first.text
    used = first.json()["usage"]["total_tokens"]
    assert used > 0
    status = (await client.get("/v1/rate-limit/status", headers=admin)).json()["token_budget"]
    assert status["used"] == used
    # Only the operator sets budgets.
    assert_error(
        await client.patch(
            f"/v1/tenants/{tenant_id}", json={"daily_token_budget": 1}, headers=admin
        ),
        403,
    )
    set_budget = await client.patch(
        f"/v1/tenants/{tenant_id}", json={"daily_token_budget": used}, headers=OPERATOR
    )
    assert set_budget.status_code == 200, set_budget.text
    assert set_budget.json()["token_budget"]["remaining"] == 0
    refused = await client.post(
        "/v1/answer", json={"query": "Where does photosynthesis happen?"}, headers=admin
    )
    assert_error(refused, 429, "token_budget_exhausted")
    assert int(refused.headers["retry-after"]) > 0
    session = (await client.post("/v1/chat/sessions", json={}, headers=admin)).json()
    chat = await client.post(
        f"/v1/chat/sessions/{session['session_id']}/messages",
        json={"content": "Where does photosynthesis happen?"},
        headers=admin,
    )
    assert_error(chat, 429, "token_budget_exhausted")
    # Search needs no LLM tokens and still works; another tenant has its own budget.
    assert (await search(client, admin)).status_code == 200
    _, other = await new_tenant(client, "rich")
    assert (
        await client.post("/v1/answer", json={"query": "anything at all"}, headers=other)
    ).status_code == 200
    # Raising the budget lets answers through again; streamed chat usage is charged too.
    await client.patch(
        f"/v1/tenants/{tenant_id}", json={"daily_token_budget": 10**6}, headers=OPERATOR
    )
    streamed = await client.post(
        f"/v1/chat/sessions/{session['session_id']}/messages",
        json={"content": "Which light does chlorophyll reflect?", "stream": True},
        headers=admin,
    )
    assert streamed.status_code == 200 and "event: done" in streamed.text
    after = (await client.get("/v1/rate-limit/status", headers=admin)).json()["token_budget"]
    done = next(e for e in streamed.text.split("\n\n") if e.startswith("event: done"))
    streamed_tokens = json.loads(done.split("data: ", 1)[1])["usage"]["total_tokens"]
    assert after["used"] == used + streamed_tokens
