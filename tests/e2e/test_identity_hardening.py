"""Identity and gateway hardening (issue 9): login timing, /metrics access, look-alike emails,
revocation that takes effect at once, user administration, logout, passwords, HEAD and the
rate-limit status headers. Everything goes through the in-process mesh over HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from gateway import jwt
from tests.e2e.conftest import assert_error, client_for, ingest, new_tenant
from tests.e2e.identity import (
    OPERATOR,
    PASSWORD,
    add_user,
    bearer,
    jwt_secret,
    login,
    tuned_mesh,
)

METRICS_TOKEN = "metrics_scraper_" + "m" * 24


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai, EDGERAG_METRICS_TOKEN=METRICS_TOKEN)


# `client` is conftest's: it picks up this module's `mesh`.


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(jwt._b64decode(token.split(".")[1])))


# --- defect 6: login costs the same whether or not the email exists -------------------------
async def test_unknown_email_and_wrong_password_hash_alike(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id, admin = await new_tenant(client, "timing")
    await add_user(client, admin, tenant_id, "student", "kim@x.org")
    real = hashlib.pbkdf2_hmac
    calls: list[int] = []

    def counting(name: str, password: bytes, salt: bytes, iterations: int, *rest: Any) -> bytes:
        calls.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counting)

    async def work(email: str, password: str) -> list[int]:
        calls.clear()
        body = {"email": email, "password": password, "tenant_id": tenant_id}
        assert_error(await client.post("/v1/auth/login", json=body), 401, "invalid_credentials")
        return list(calls)

    wrong_password = await work("kim@x.org", "wrong password!")
    assert wrong_password == [1000]  # one PBKDF2 at the tenant's iteration count
    # The first unknown email of the process must not pay for building a dummy hash either.
    for email in ("nobody@x.org", "nobody-else@x.org", "nobody@x.org"):
        assert await work(email, "wrong password!") == wrong_password


# --- /metrics: operator (everything) or the metrics token (no per-tenant series) -------------
async def test_metrics_need_a_token_and_tenant_series_are_the_operators(
    client: httpx.AsyncClient,
) -> None:
    tenant_id, admin = await new_tenant(client, "metered")
    await ingest(client, admin, "Biology", "Chlorophyll absorbs red and blue light.")
    answer = await client.post(
        "/v1/answer", json={"query": "Which light does chlorophyll absorb?"}, headers=admin
    )
    assert answer.status_code == 200, answer.text

    assert_error(await client.get("/metrics"), 401)
    assert_error(await client.get("/metrics", headers=admin), 401)  # a tenant admin is no operator
    assert_error(await client.get("/metrics", headers=bearer("not-the-token")), 401)

    full = await client.get("/metrics", headers=OPERATOR)
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/plain")
    assert f'tenant="{tenant_id}"' in full.text
    tokens_by_tenant = [
        line for line in full.text.splitlines() if line.startswith("edgerag_llm_tokens_total{")
    ]
    assert tokens_by_tenant, full.text

    scraped = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert scraped.status_code == 200
    assert tenant_id not in scraped.text and "tenant=" not in scraped.text
    assert "edgerag_requests_total" in scraped.text
    # The scraper still sees LLM token totals, summed over tenants (the registry is the
    # process's: earlier tests' tenants are in it too).
    total: dict[str, float] = {}
    for line in tokens_by_tenant:
        series, value = line.rsplit(" ", 1)
        series = re.sub(r'tenant="[^"]*",?', "", series).replace(",}", "}")
        total[series] = total.get(series, 0.0) + float(value)
    for line in scraped.text.splitlines():
        if line.startswith("edgerag_llm_tokens_total{"):
            series, value = line.rsplit(" ", 1)
            assert total.pop(series) == float(value)
    assert total == {}


async def test_metrics_without_any_token_configured_fail_closed(data_dir: Path, ai: Any) -> None:
    from emulator.mesh import build_mesh

    closed = build_mesh(data_dir, operator_token=None, ai=ai)
    async with client_for(closed) as c:
        assert_error(await c.get("/metrics"), 401)
        assert_error(await c.get("/metrics", headers=bearer("")), 401)
    await closed.drain()


# --- look-alike emails are one user ---------------------------------------------------------
async def test_look_alike_emails_are_the_same_user(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "lookalikes")
    ada = await add_user(client, admin, tenant_id, "teacher", "ada@school.edu", "Ada")
    for variant in (
        "ａｄａ@school.edu",
        "a\u200bda@school.edu",
        "ada@ｓchool.edu",
        "ADA@School.EDU",
    ):
        body = {"email": variant, "password": PASSWORD, "name": "Imposter", "role": "admin"}
        dup = await client.post("/v1/auth/register", json=body, headers=admin)
        assert_error(dup, 409, "email_taken")
        # …and the variant logs in as Ada, with Ada's login rate-limit window.
        tokens = await login(client, tenant_id, variant)
        me = await client.get("/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.json()["id"] == ada["id"]
    users = (await client.get("/v1/users", headers=admin)).json()["users"]
    assert [u["email"] for u in users] == ["ada@school.edu"]

    idn = await client.post(
        "/v1/auth/register",
        json={"email": "bo@Bücher.de", "password": PASSWORD, "name": "Bo", "role": "student"},
        headers=admin,
    )
    assert idn.status_code == 201 and idn.json()["email"] == "bo@xn--bcher-kva.de"
    for bad in ("ada@" + "a" * 64 + ".edu", "a\ue000da@school.edu", "\u200b@school.edu"):
        body = {"email": bad, "password": PASSWORD, "name": "X", "role": "student"}
        error = assert_error(await client.post("/v1/auth/register", json=body, headers=admin), 422)
        assert error["message"].startswith("email"), error
    # A lone surrogate, as JSON can carry one: refused (by the JSON reader, or by the email
    # field if it gets that far), never a 500.
    raw = b'{"email": "a\\ud800@school.edu", "password": "x", "tenant_id": "%s"}' % (
        tenant_id.encode()
    )
    response = await client.post(
        "/v1/auth/login", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code)


# --- access tokens: capped lifetime, and revocation that takes effect at once ---------------
def forge(data_dir: Path, now: int, **claims: Any) -> str:
    kid, secret = jwt_secret(data_dir)
    base = {"iss": jwt.ISSUER, "aud": jwt.AUDIENCE, "iat": now, "nbf": now, "jti": "forged"}
    return jwt.sign({**base, **claims}, secret, kid)


async def test_a_correctly_signed_token_living_31_years_is_refused(
    client: httpx.AsyncClient, data_dir: Path
) -> None:
    tenant_id, admin = await new_tenant(client, "long lived")
    user = await add_user(client, admin, tenant_id, "student", "s@x.org")
    claims = claims_of(user["access_token"])
    who = {k: claims[k] for k in ("sub", "tid", "role", "sid")}
    now = int(time.time())
    ok = forge(data_dir, now, exp=now + jwt.ACCESS_TTL_SECONDS, **who)
    assert (await client.get("/v1/auth/me", headers=bearer(ok))).status_code == 200
    for lifetime in (jwt.ACCESS_TTL_SECONDS + 60, 31 * 365 * 24 * 3600):
        long_lived = forge(data_dir, now, exp=now + lifetime, **who)
        assert_error(await client.get("/v1/auth/me", headers=bearer(long_lived)), 401)
    # A token naming no session (or another user's) cannot dodge revocation.
    no_session = forge(data_dir, now, exp=now + 60, **{k: who[k] for k in ("sub", "tid", "role")})
    assert_error(await client.get("/v1/auth/me", headers=bearer(no_session)), 401)
    other = await add_user(client, admin, tenant_id, "student", "o@x.org")
    stolen = forge(
        data_dir, now, exp=now + 60, **{**who, "sid": claims_of(other["access_token"])["sid"]}
    )
    assert_error(await client.get("/v1/auth/me", headers=bearer(stolen)), 401)


async def test_access_token_dies_with_its_refresh_family(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "families")
    user = await add_user(client, admin, tenant_id, "teacher", "t@x.org")
    other_login = await login(client, tenant_id, "t@x.org")  # a second session of the same user
    assert (await client.get("/v1/auth/me", headers=user["auth"])).status_code == 200
    spent = user["refresh_token"]
    pair = (await client.post("/v1/auth/refresh", json={"refresh_token": spent})).json()
    fresh = bearer(pair["access_token"])
    assert (await client.get("/v1/auth/me", headers=fresh)).status_code == 200
    # The spent token comes back (it leaked): the family is revoked, and so is every access
    # token issued from it — the old one and its successor — at once, not 15 minutes later.
    assert_error(await client.post("/v1/auth/refresh", json={"refresh_token": spent}), 401)
    for auth in (user["auth"], fresh):
        assert_error(await client.get("/v1/auth/me", headers=auth), 401)
        assert_error(await client.post("/v1/search", json={"query": "x"}, headers=auth), 401)
    # The user's other login is another family: untouched.
    other = bearer(other_login["access_token"])
    assert (await client.get("/v1/auth/me", headers=other)).status_code == 200


async def test_logout_ends_the_session_at_once(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "logout")
    user = await add_user(client, admin, tenant_id, "student", "s@x.org")
    laptop = await login(client, tenant_id, "s@x.org")
    out = await client.post("/v1/auth/logout", headers=user["auth"])
    assert out.status_code == 200, out.text
    assert out.json() == {"logged_out": True}
    assert_error(await client.get("/v1/auth/me", headers=user["auth"]), 401)
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert_error(refresh, 401)
    assert_error(await client.post("/v1/auth/logout", headers=user["auth"]), 401)
    # Only that session: the laptop's login still works.
    assert (
        await client.get("/v1/auth/me", headers=bearer(laptop["access_token"]))
    ).status_code == 200
    # API keys have no session to end: they are revoked with DELETE /v1/api-keys/{id}.
    assert_error(await client.post("/v1/auth/logout", headers=admin), 400)
    assert_error(await client.post("/v1/auth/logout"), 401)


# --- admins disable, enable and re-role users -----------------------------------------------
async def test_admins_disable_enable_and_change_roles_effective_at_once(
    client: httpx.AsyncClient,
) -> None:
    tenant_id, admin = await new_tenant(client, "admin ops")
    _, other_admin = await new_tenant(client, "elsewhere")
    teacher = await add_user(client, admin, tenant_id, "teacher", "t@x.org")
    uid = teacher["id"]
    doc = {"title": "Notes", "text": "Some notes."}
    assert (
        await client.post("/v1/documents", json=doc, headers=teacher["auth"])
    ).status_code == 202

    # Demoted: the same access token is a student's from the next request on.
    demoted = await client.patch(f"/v1/users/{uid}", json={"role": "student"}, headers=admin)
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "student" and demoted.json()["disabled_at"] is None
    assert_error(await client.post("/v1/documents", json=doc, headers=teacher["auth"]), 403)
    assert (await client.get("/v1/auth/me", headers=teacher["auth"])).json()["role"] == "student"

    # Disabled: every token dies at once, refresh and login are refused.
    disabled = await client.patch(f"/v1/users/{uid}", json={"disabled": True}, headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled_at"]
    assert_error(await client.get("/v1/auth/me", headers=teacher["auth"]), 401)
    refresh = await client.post(
        "/v1/auth/refresh", json={"refresh_token": teacher["refresh_token"]}
    )
    assert_error(refresh, 401)
    body = {"email": "t@x.org", "password": PASSWORD, "tenant_id": tenant_id}
    assert_error(await client.post("/v1/auth/login", json=body), 401, "invalid_credentials")

    # Enabled again: a new login works; sessions from before stay ended.
    enabled = await client.patch(
        f"/v1/users/{uid}", json={"disabled": False, "role": "teacher"}, headers=admin
    )
    assert enabled.status_code == 200
    assert enabled.json()["disabled_at"] is None and enabled.json()["role"] == "teacher"
    assert_error(await client.get("/v1/auth/me", headers=teacher["auth"]), 401)
    again = bearer((await login(client, tenant_id, "t@x.org"))["access_token"])
    assert (await client.post("/v1/documents", json=doc, headers=again)).status_code == 202

    # Who may: admins of this tenant only; never oneself; fields are checked.
    student = await add_user(client, admin, tenant_id, "student", "s@x.org")
    assert_error(await client.patch(f"/v1/users/{student['id']}", json={"role": "admin"}), 401)
    for caller in (again, student["auth"]):
        assert_error(
            await client.patch(
                f"/v1/users/{student['id']}", json={"role": "admin"}, headers=caller
            ),
            403,
        )
    assert_error(
        await client.patch(f"/v1/users/{uid}", json={"disabled": True}, headers=other_admin), 404
    )
    assert_error(
        await client.patch("/v1/users/u_" + "0" * 24, json={"disabled": True}, headers=admin), 404
    )
    for bad, field in (
        ({}, "body"),
        ({"role": "operator"}, "role"),
        ({"disabled": "yes"}, "disabled"),
        ({"email": "x@y.org"}, "email"),
    ):
        error = assert_error(await client.patch(f"/v1/users/{uid}", json=bad, headers=admin), 422)
        assert error["message"].startswith(field), error
    boss = await add_user(client, admin, tenant_id, "admin", "boss@x.org")
    for change in ({"disabled": True}, {"role": "teacher"}):
        assert_error(
            await client.patch(f"/v1/users/{boss['id']}", json=change, headers=boss["auth"]), 403
        )
    assert (await client.get("/v1/auth/me", headers=boss["auth"])).json()["role"] == "admin"


# --- passwords ------------------------------------------------------------------------------
@pytest.mark.parametrize("password", [" " * 10, "a long passphrase\x00", "a long\r\npassphrase"])
async def test_blank_and_control_character_passwords_are_refused(
    client: httpx.AsyncClient, password: str
) -> None:
    _, admin = await new_tenant(client, "passwords")
    body = {"email": "p@x.org", "password": password, "name": "P", "role": "student"}
    error = assert_error(await client.post("/v1/auth/register", json=body, headers=admin), 422)
    assert error["message"].startswith("password"), error


# --- HEAD and the rate-limit status headers -------------------------------------------------
async def test_head_works_for_get_routes_without_a_body(client: httpx.AsyncClient) -> None:
    get = await client.get("/health")
    head = await client.head("/health")
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["x-request-id"]
    _, admin = await new_tenant(client, "heads")
    me = await client.head("/v1/auth/me", headers=admin)
    assert me.status_code == 200 and me.content == b"" and "ratelimit-limit" in me.headers
    assert (await client.head("/v1/auth/me")).status_code == 401
    # HEAD on a POST-only route is a 405 whose Allow lists what the path takes.
    refused = await client.head("/v1/search", headers=admin)
    assert refused.status_code == 405 and refused.content == b""
    assert refused.headers["allow"] == "POST"
    assert "HEAD" in (await client.options("/health")).headers["allow"]
    assert "HEAD" in (await client.put("/health")).headers["allow"]


async def test_rate_limit_status_carries_the_ratelimit_headers(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, admin = await new_tenant(client, "status headers")
    for _ in range(3):
        await client.post("/v1/answer", json={"query": "anything at all"}, headers=admin)
    status = await client.get("/v1/rate-limit/status", headers=admin)
    assert status.status_code == 200, status.text
    windows = status.json()["windows"]
    tightest = min(windows, key=lambda w: (w["remaining"], -w["reset_seconds"]))
    assert status.headers["ratelimit-limit"] == str(tightest["limit"])
    assert status.headers["ratelimit-remaining"] == str(tightest["remaining"])
    assert int(status.headers["ratelimit-reset"]) == tightest["reset_seconds"]
    policy, current = status.headers["ratelimit-policy"], status.headers["ratelimit"]
    for w in windows:  # draft-ietf-httpapi-ratelimit-headers: one item per window
        name = f'"{w["route_class"]}-{w["scope"]}"'
        assert f"{name};q={w['limit']};w={w['window_seconds']}" in policy, policy
        assert f"{name};r={w['remaining']};t={w['reset_seconds']}" in current, current
    # The status route itself is not counted: asking twice uses nothing up.
    again = await client.get("/v1/rate-limit/status", headers=admin)
    assert again.headers["ratelimit-remaining"] == status.headers["ratelimit-remaining"]
