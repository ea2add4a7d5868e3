"""Users, access and refresh tokens, API keys, and every way a credential must be refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.mesh import Mesh
from gateway import jwt
from kernel.runtime.logs import set_sink
from tests.e2e.conftest import assert_error, new_tenant
from tests.e2e.identity import (
    OPERATOR,
    PASSWORD,
    add_user,
    bearer,
    jwt_secret,
    login,
    tuned_mesh,
)


@pytest.fixture
def mesh(data_dir: Path, ai: Any) -> Mesh:
    return tuned_mesh(data_dir, ai)


# `client` is conftest's: it picks up this module's `mesh`.


async def test_register_login_me_refresh(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "school")
    teacher = await add_user(client, admin, tenant_id, "teacher", "Ada.Teacher@School.edu", "Ada")
    assert teacher["id"].startswith("u_") and teacher["email"] == "ada.teacher@school.edu"
    assert teacher["token_type"] == "Bearer" and teacher["expires_in"] == jwt.ACCESS_TTL_SECONDS
    me = await client.get("/v1/auth/me", headers=teacher["auth"])
    assert me.status_code == 200, me.text
    assert me.json() | {"created_at": None} == {
        "id": teacher["id"],
        "tenant_id": tenant_id,
        "role": "teacher",
        "kind": "user",
        "email": "ada.teacher@school.edu",
        "name": "Ada",
        "created_at": None,
    }
    # API keys are principals too.
    key_me = (await client.get("/v1/auth/me", headers=admin)).json()
    assert key_me["kind"] == "api_key" and key_me["role"] == "admin"

    # Refresh rotates: the new pair works, the old refresh token is spent.
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": teacher["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refresh_token"] != teacher["refresh_token"]
    assert (
        await client.get("/v1/auth/me", headers=bearer(pair["access_token"]))
    ).status_code == 200

    # Replaying the spent token revokes the whole family, including the successor.
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": teacher["refresh_token"]})
    assert_error(replay, 401, "refresh_token_reused")
    successor = await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error(successor, 401, "refresh_token_reused")
    # A fresh login starts a new family.
    again = await login(client, tenant_id, "ada.teacher@school.edu")
    ok = await client.post("/v1/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert ok.status_code == 200


async def test_refresh_tokens_are_stored_hashed(client: httpx.AsyncClient, mesh: Mesh) -> None:
    tenant_id, admin = await new_tenant(client, "hashes")
    user = await add_user(client, admin, tenant_id, "student", "s@x.org")
    rows = (await mesh.stores["DB"].execute("SELECT * FROM refresh_tokens")).rows
    users = (await mesh.stores["DB"].execute("SELECT password_hash FROM users")).rows
    dump = json.dumps(rows + users)
    assert user["refresh_token"] not in dump and PASSWORD not in dump
    assert users[0]["password_hash"].startswith("pbkdf2_sha256$1000$")


async def test_login_failures_look_alike(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "logins")
    await add_user(client, admin, tenant_id, "student", "kim@x.org")
    other_tenant, _ = await new_tenant(client, "other")
    cases = [
        {"email": "kim@x.org", "password": "wrong password!", "tenant_id": tenant_id},
        {"email": "nobody@x.org", "password": PASSWORD, "tenant_id": tenant_id},
        # The right user and password, but another tenant: users are per tenant.
        {"email": "kim@x.org", "password": PASSWORD, "tenant_id": other_tenant},
    ]
    messages = set()
    for body in cases:
        error = assert_error(
            await client.post("/v1/auth/login", json=body), 401, "invalid_credentials"
        )
        messages.add(error["message"])
    assert len(messages) == 1


async def test_register_needs_a_tenant_admin(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "roles")
    teacher = await add_user(client, admin, tenant_id, "teacher", "t@x.org")
    body = {"email": "n@x.org", "password": PASSWORD, "name": "N", "role": "admin"}
    assert_error(await client.post("/v1/auth/register", json=body), 401)
    assert_error(await client.post("/v1/auth/register", json=body, headers=teacher["auth"]), 403)
    assert (await client.post("/v1/auth/register", json=body, headers=admin)).status_code == 201
    dup = await client.post("/v1/auth/register", json={**body, "email": "N@X.org"}, headers=admin)
    assert_error(dup, 409, "email_taken")


def forge(data_dir: Path, *, key: bytes | None = None, alg: str = "HS256", **claims: Any) -> str:
    kid, secret = jwt_secret(data_dir)
    now = int(time.time())
    base = {
        "iss": jwt.ISSUER,
        "aud": jwt.AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "forged",
    }
    return jwt.sign({**base, **claims}, key or secret, kid, alg=alg)


async def test_bad_access_tokens_get_401(client: httpx.AsyncClient, data_dir: Path) -> None:
    tenant_id, admin = await new_tenant(client, "tokens")
    other_id, other_admin = await new_tenant(client, "elsewhere")
    student = await add_user(client, admin, tenant_id, "student", "s@x.org")
    session = json.loads(jwt._b64decode(student["access_token"].split(".")[1]))["sid"]
    who = {"sub": student["id"], "tid": tenant_id, "role": "student", "sid": session}
    assert (
        await client.get("/v1/auth/me", headers=bearer(forge(data_dir, **who)))
    ).status_code == 200

    header, payload, signature = student["access_token"].split(".")
    claims = json.loads(jwt._b64decode(payload))
    tampered = (
        f"{header}.{jwt._b64encode(json.dumps({**claims, 'role': 'admin'}).encode())}.{signature}"
    )
    none_header = jwt._b64encode(b'{"alg":"none","typ":"JWT"}')
    now = int(time.time())
    bad = {
        "alg none": f"{none_header}.{payload}.",
        "wrong signature": forge(data_dir, key=b"x" * 48, **who),
        "HS512": forge(data_dir, alg="HS512", **who),
        "expired": forge(data_dir, **who, exp=now - 600, iat=now - 1200, nbf=now - 1200),
        "not yet valid": forge(data_dir, **who, nbf=now + 600),
        "wrong audience": forge(data_dir, **who, aud="another-api"),
        "wrong issuer": forge(data_dir, **who, iss="someone"),
        "tampered role": tampered,
        # Signed correctly, but the user does not belong to this tenant.
        "another tenant": forge(data_dir, **{**who, "tid": other_id, "role": "admin"}),
        "unknown user": forge(data_dir, **{**who, "sub": "u_" + "0" * 24, "role": "admin"}),
        "garbage": "eyJhbGciOiJIUzI1NiJ9.bm9wZQ.AAAA",
    }
    for name, token in bad.items():
        for method, path in (("GET", "/v1/auth/me"), ("POST", "/v1/search")):
            response = await client.request(
                method, path, headers=bearer(token), json={"query": "x"}
            )
            code = "token_expired" if name == "expired" else "unauthorized"
            assert_error(response, 401, code)
    # Another tenant's admin cannot be impersonated through its id either.
    assert (await client.get("/v1/auth/me", headers=other_admin)).json()["tenant_id"] == other_id

    metrics = (await client.get("/metrics", headers=OPERATOR)).text
    for reason in ("bad_algorithm", "bad_signature", "expired", "wrong_audience", "unknown_user"):
        assert f'edgerag_auth_failures_total{{reason="{reason}",worker="gateway"}}' in metrics


async def test_disabled_user_and_changed_role_take_effect_at_once(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    tenant_id, admin = await new_tenant(client, "revocation")
    user = await add_user(client, admin, tenant_id, "teacher", "t@x.org")
    db = mesh.stores["DB"]
    await db.execute("UPDATE users SET role = 'student' WHERE id = ?1", (user["id"],))
    assert (await client.get("/v1/auth/me", headers=user["auth"])).json()["role"] == "student"
    await db.execute("UPDATE users SET disabled_at = 'now' WHERE id = ?1", (user["id"],))
    assert_error(await client.get("/v1/auth/me", headers=user["auth"]), 401)
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]})
    assert_error(refresh, 401)


async def test_api_keys_listed_created_revoked(client: httpx.AsyncClient, mesh: Mesh) -> None:
    tenant_id, admin = await new_tenant(client, "keys")
    _, other_admin = await new_tenant(client, "other keys")
    created = await client.post(
        "/v1/api-keys", json={"name": "ci loader", "role": "teacher"}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["api_key"].startswith("erk_") and key["role"] == "teacher"
    me = (await client.get("/v1/auth/me", headers=bearer(key["api_key"]))).json()
    assert me == {"id": key["id"], "tenant_id": tenant_id, "role": "teacher", "kind": "api_key"}

    listing = await client.get("/v1/api-keys", headers=admin)
    assert listing.status_code == 200
    keys = listing.json()["api_keys"]
    assert {k["id"] for k in keys} >= {key["id"]} and len(keys) == 2
    assert key["api_key"] not in listing.text and "key_hash" not in listing.text
    # Other tenants' keys are not listed, and not revocable.
    assert key["id"] not in (await client.get("/v1/api-keys", headers=other_admin)).text
    assert_error(await client.delete(f"/v1/api-keys/{key['id']}", headers=other_admin), 404)
    # Only admins manage keys.
    teacher = bearer(key["api_key"])
    assert_error(await client.get("/v1/api-keys", headers=teacher), 403, "forbidden")
    assert_error(await client.post("/v1/api-keys", json={}, headers=teacher), 403)

    revoked = await client.delete(f"/v1/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert_error(await client.get("/v1/auth/me", headers=teacher), 401)
    assert_error(await client.delete(f"/v1/api-keys/{key['id']}", headers=admin), 404)
    stored = (await mesh.stores["DB"].execute("SELECT * FROM api_keys")).rows
    assert key["api_key"] not in json.dumps(stored)


@pytest.mark.parametrize(
    "evil",
    [
        "x'); DROP TABLE users; --",
        "' OR '1'='1",
        'NEAR("a" "b") OR title:*',
        '") OR 1=1 --',
        "Robert'); DELETE FROM api_keys WHERE ('1'='1",
    ],
)
async def test_injection_in_every_string_field_is_data(
    client: httpx.AsyncClient, mesh: Mesh, evil: str
) -> None:
    tenant_id, admin = await new_tenant(client, "injection")
    email = "inj@x.org"
    reg = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": evil + "-long-enough", "name": evil, "role": "student"},
        headers=admin,
    )
    assert reg.status_code == 201, reg.text
    assert reg.json()["name"] == evil.strip()
    tokens = await login(client, tenant_id, email, evil + "-long-enough")
    user = bearer(tokens["access_token"])
    # Injection in the email, tenant id, refresh token, search and answer queries, ids.
    bad_login = await client.post(
        "/v1/auth/login", json={"email": f"a{evil}@x.org", "password": evil, "tenant_id": tenant_id}
    )
    assert bad_login.status_code in (401, 422)
    assert_error(
        await client.post(
            "/v1/auth/login", json={"email": email, "password": "x", "tenant_id": evil}
        ),
        422,
    )
    assert_error(await client.post("/v1/auth/refresh", json={"refresh_token": evil}), 401)
    for path in ("/v1/search", "/v1/answer"):
        response = await client.post(path, json={"query": evil}, headers=user)
        assert response.status_code == 200, response.text
    assert_error(await client.get(f"/v1/documents/{evil}", headers=user), 404)
    assert_error(await client.delete(f"/v1/api-keys/{evil}", headers=admin), 404)
    assert_error(
        await client.post("/v1/relationships", json={"student_id": evil}, headers=admin), 422
    )
    # Everything is still there.
    db = mesh.stores["DB"]
    assert (await db.execute("SELECT COUNT(*) AS n FROM users")).rows[0]["n"] == 1
    assert (await db.execute("SELECT COUNT(*) AS n FROM api_keys")).rows[0]["n"] == 1
    assert (await client.get("/v1/auth/me", headers=admin)).status_code == 200


async def test_over_long_and_malformed_fields(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "limits")
    base = {"email": "a@x.org", "password": PASSWORD, "name": "A", "role": "student"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**base, "email": "a" * 300 + "@x.org"}, "email"),
        ({**base, "email": "not-an-email"}, "email"),
        ({**base, "password": "short"}, "password"),
        ({**base, "password": "p" * 10_000}, "password"),
        ({**base, "name": "n" * 1000}, "name"),
        ({**base, "name": "bad\x00name"}, "name"),
        ({**base, "role": "operator"}, "role"),
        ({**base, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        error = assert_error(
            await client.post("/v1/auth/register", json=body, headers=admin),
            422,
            "validation_error",
        )
        assert error["message"].startswith(field), error
    login_cases = [
        {"email": "a@x.org", "password": "p" * 10_000, "tenant_id": tenant_id},
        {"email": "a@x.org", "password": PASSWORD},
    ]
    for body in login_cases:
        assert_error(await client.post("/v1/auth/login", json=body), 422)
    assert_error(await client.post("/v1/auth/refresh", json={"refresh_token": "r" * 1000}), 422)
    # Not UTF-8 / not JSON: 400 malformed, same shape.
    for raw in (b'{"email": "\xff\xfe"}', b"\xc3\x28", b"{not json"):
        response = await client.post(
            "/v1/auth/login", content=raw, headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "invalid_json")


async def test_logs_mask_secrets_tokens_and_emails(client: httpx.AsyncClient) -> None:
    lines: list[str] = []
    set_sink(lines.append)
    try:
        tenant_id, admin = await new_tenant(client, "logs")
        user = await add_user(client, admin, tenant_id, "student", "secret.person@school.edu")
        await client.get("/v1/auth/me", headers=user["auth"])
        await client.post("/v1/search", json={"query": "hops"}, headers=user["auth"])
        await client.post(
            "/v1/auth/login",
            json={
                "email": "secret.person@school.edu",
                "password": "wrong-password",
                "tenant_id": tenant_id,
            },
        )
        await client.get("/v1/auth/me", headers=bearer(user["access_token"] + "x"))
    finally:
        set_sink(None)
    text = "\n".join(lines)
    for secret in (
        user["access_token"],
        user["refresh_token"],
        PASSWORD,
        "secret.person",
        admin["authorization"][7:],
    ):
        assert secret not in text
    records = [json.loads(line) for line in lines]
    gateway = [r for r in records if r["event"] == "request" and r["worker"] == "gateway"]
    me = next(r for r in gateway if r["route"] == "/v1/auth/me" and r["status"] == 200)
    assert me["tenant"] == tenant_id and me["request_id"] and "latency_ms" in me
    assert any(r["event"] == "auth_failure" for r in records)
    hops = [r for r in records if r["event"] == "service_call"]
    assert hops and {"to", "status", "latency_ms", "request_id"} <= set(hops[0])


async def test_security_headers_and_cors(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "cors")
    _, other_admin = await new_tenant(client, "no cors")
    for response in (
        await client.get("/health"),
        await client.get("/v1/nope"),
        await client.get("/v1/auth/me", headers=admin),
        await client.get("/v1/auth/me"),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"].startswith("max-age=")

    origin = "https://app.school.example"
    # Wildcards and non-origins are refused; admins of the tenant set it, others may not.
    bad = await client.patch(
        f"/v1/tenants/{tenant_id}", json={"cors_origins": ["*"]}, headers=admin
    )
    assert_error(bad, 422)
    assert_error(
        await client.patch(
            f"/v1/tenants/{tenant_id}", json={"cors_origins": [origin]}, headers=other_admin
        ),
        404,
    )
    assert_error(
        await client.patch(
            f"/v1/tenants/{tenant_id}", json={"daily_token_budget": 5}, headers=admin
        ),
        403,
    )
    ok = await client.patch(
        f"/v1/tenants/{tenant_id}", json={"cors_origins": [origin + "/"]}, headers=admin
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["cors_origins"] == [origin]

    preflight = await client.options(
        "/v1/search",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers.get("access-control-allow-credentials") is None
    evil = await client.options(
        "/v1/search",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert_error(evil, 403, "cors_origin_not_allowed")
    assert "access-control-allow-origin" not in evil.headers

    mine = await client.get("/v1/auth/me", headers={**admin, "origin": origin})
    assert mine.headers["access-control-allow-origin"] == origin
    assert "ratelimit-remaining" in mine.headers["access-control-expose-headers"]
    # Another tenant's caller from that origin gets no CORS grant: its browser cannot read it.
    theirs = await client.get("/v1/auth/me", headers={**other_admin, "origin": origin})
    assert "access-control-allow-origin" not in theirs.headers
    foreign = await client.get("/v1/auth/me", headers={**admin, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


async def test_internal_headers_from_the_internet_are_ignored(client: httpx.AsyncClient) -> None:
    tenant_id, admin = await new_tenant(client, "spoof")
    student = await add_user(client, admin, tenant_id, "student", "s@x.org")
    spoof = {
        **student["auth"],
        "x-edgerag-role": "admin",
        "x-edgerag-principal": "key_x",
        "x-edgerag-tenant": "t_" + "f" * 24,
    }
    assert (await client.get("/v1/auth/me", headers=spoof)).json()["role"] == "student"
    response = await client.post("/v1/documents", json={"title": "x", "text": "y"}, headers=spoof)
    assert_error(response, 403)
