"""Bad input gets the one error shape, the right status, and writes nothing."""

from __future__ import annotations

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, new_tenant


async def _document_count(mesh: Mesh) -> int:
    result = await mesh.stores["DB"].execute("SELECT COUNT(*) AS n FROM documents")
    return int(result.rows[0]["n"])


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nope"), 404, "not_found")
    response = await client.delete("/v1/search")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_tenant_creation_requires_the_operator(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/v1/tenants", json={"name": "x"}), 401, "unauthorized")
    wrong = {"authorization": "Bearer op_wrong"}
    assert_error(await client.post("/v1/tenants", json={"name": "x"}, headers=wrong), 401)
    _, auth = await new_tenant(client, "real")
    # A tenant's own API key is not the operator token.
    assert_error(await client.post("/v1/tenants", json={"name": "x"}, headers=auth), 401)


async def test_operator_route_fails_closed_when_unconfigured(mesh: Mesh) -> None:
    del mesh.envs["gateway"].EDGERAG_OPERATOR_TOKEN
    from tests.e2e.conftest import client_for

    async with client_for(mesh) as client:
        response = await client.post(
            "/v1/tenants", json={"name": "x"}, headers={"authorization": "Bearer "}
        )
        assert_error(response, 401)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer "},
        {"authorization": "Bearer erk_forged0000000000000000000000000000000000"},
        {"authorization": f"Bearer {OPERATOR_TOKEN}"},
    ],
)
async def test_missing_or_forged_keys_get_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_error(
        await client.post("/v1/search", json={"query": "x"}, headers=headers), 401, "unauthorized"
    )
    assert_error(await client.get("/v1/documents", headers=headers), 401, "unauthorized")


async def test_malformed_bodies(client: httpx.AsyncClient, mesh: Mesh) -> None:
    _, auth = await new_tenant(client, "strict")
    json_headers = {**auth, "content-type": "application/json"}
    assert_error(
        await client.post("/v1/documents", content=b"{not json", headers=json_headers),
        400,
        "invalid_json",
    )
    assert_error(
        await client.post("/v1/documents", content=b"\xff\xfe\x00", headers=json_headers), 400
    )
    assert_error(await client.post("/v1/documents", content=b"[]", headers=json_headers), 422)
    error = assert_error(await client.post("/v1/documents", json={"title": "t"}, headers=auth), 422)
    assert "exactly one of `text`, `url` or `upload_id`" in error["message"]
    error = assert_error(
        await client.post("/v1/documents", json={"title": 7, "text": "x"}, headers=auth), 422
    )
    assert error["message"].startswith("title:")
    assert_error(
        await client.post("/v1/documents", json={"title": "t", "text": "   \n "}, headers=auth), 422
    )
    assert_error(
        await client.post(
            "/v1/documents", json={"title": "t", "text": "x", "oops": 1}, headers=auth
        ),
        422,
    )
    assert_error(
        await client.post("/v1/search", json={"query": "x", "top_k": 0}, headers=auth), 422
    )
    assert_error(await client.post("/v1/search", json={"query": "x" * 5000}, headers=auth), 422)
    form = {**auth, "content-type": "application/x-www-form-urlencoded"}
    assert_error(await client.post("/v1/search", content=b"query=x", headers=form), 415)
    assert_error(await client.post("/v1/documents", content=b"query=x", headers=form), 415)
    assert await _document_count(mesh) == 0


async def test_oversize_body_is_413_and_writes_nothing(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "big")
    huge = "word " * (2 * 1024 * 1024 + 10)  # > 10 MiB of JSON
    assert_error(
        await client.post("/v1/documents", json={"title": "t", "text": huge}, headers=auth), 413
    )
    assert await _document_count(mesh) == 0


async def test_hostile_search_text_is_just_text(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "hostile")
    await client.post(
        "/v1/documents",
        json={"title": "t", "text": "Wings produce lift. Engines produce thrust."},
        headers=auth,
    )
    for query in [
        '"unbalanced',
        "NEAR(lift thrust)",
        "lift OR",
        "*",
        "title:x AND",
        "'; DROP TABLE chunks; --",
        "^^^",
    ]:
        response = await client.post("/v1/search", json={"query": query}, headers=auth)
        assert response.status_code == 200, (query, response.text)
    response = await client.post("/v1/search", json={"query": "lift) OR (thrust"}, headers=auth)
    assert response.json()["results"], "terms inside operator soup still match as words"
