"""Hostile request bodies: nesting, huge numbers, control characters, loose types, bad pages.

Every refusal is the one error shape with a 4xx status; nothing here may become a 500.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from emulator.mesh import Mesh
from tests.e2e.conftest import OPERATOR_TOKEN, assert_error, new_tenant

JSON = {"content-type": "application/json"}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def huge_int(digits: int = 5000) -> bytes:
    return b'{"query": "x", "top_k": ' + b"7" * digits + b"}"


@pytest.mark.parametrize("depth", [1_000, 50_000])
async def test_deep_nesting_is_400_on_search(client: httpx.AsyncClient, depth: int) -> None:
    _, auth = await new_tenant(client, "deep")
    response = await client.post("/v1/search", content=nested(depth), headers={**auth, **JSON})
    error = assert_error(response, 400, "invalid_json")
    assert "nested" in error["message"]


@pytest.mark.parametrize("route", ["/v1/auth/login", "/v1/auth/refresh"])
@pytest.mark.parametrize("depth", [1_000, 50_000])
async def test_deep_nesting_is_400_before_authentication(
    client: httpx.AsyncClient, route: str, depth: int
) -> None:
    body = b'{"refresh_token": ' + nested(depth) + b"}"
    error = assert_error(await client.post(route, content=body, headers=JSON), 400, "invalid_json")
    assert "nested" in error["message"]


@pytest.mark.parametrize("route", ["/v1/search", "/v1/auth/login", "/v1/auth/refresh"])
async def test_a_5000_digit_integer_is_400(client: httpx.AsyncClient, route: str) -> None:
    _, auth = await new_tenant(client, "digits")
    response = await client.post(route, content=huge_int(), headers={**auth, **JSON})
    error = assert_error(response, 400, "invalid_json")
    assert "digits" in error["message"]


async def test_non_finite_numbers_are_400(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "nan")
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        body = b'{"query": "x", "dense_weight": ' + literal + b"}"
        response = await client.post("/v1/search", content=body, headers={**auth, **JSON})
        assert_error(response, 400, "invalid_json")


async def test_multipart_metadata_goes_through_the_bounded_parser(
    client: httpx.AsyncClient,
) -> None:
    _, auth = await new_tenant(client, "multipart")
    for field, value in (("metadata", nested(5_000)), ("tags", b"[" + b"9" * 5000 + b"]")):
        response = await client.post(
            "/v1/documents",
            files={"file": ("a.txt", b"hello there", "text/plain")},
            data={field: value.decode()},
            headers=auth,
        )
        error = assert_error(response, 422)
        assert error["message"].startswith(f"{field}:"), error


async def test_a_bearer_token_with_a_deeply_nested_header_is_401(
    client: httpx.AsyncClient,
) -> None:
    # The JWT header is parsed before the signature is checked: it is attacker-controlled JSON.
    for header in (b'{"a":' + b"[" * 2_500, b'{"a":' + b"7" * 2_000 + b"}"):
        token = base64.urlsafe_b64encode(header).rstrip(b"=").decode() + ".e30.AAAA"
        response = await client.get("/v1/auth/me", headers={"authorization": f"Bearer {token}"})
        assert_error(response, 401, "unauthorized")


# --- labels: control characters are refused wherever a user names something ------------------
ANSI = "\x1b[2J\x1b[31mpwned"


async def _documents(mesh: Mesh) -> int:
    result = await mesh.stores["DB"].execute("SELECT COUNT(*) AS n FROM documents")
    return int(result.rows[0]["n"])


async def test_json_document_labels_refuse_control_characters(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "labels")
    cases: list[tuple[dict[str, object], str]] = [
        ({"title": ANSI}, "title"),
        ({"title": "ok\r\nlevel=error"}, "title"),
        ({"title": "t", "tags": ["a\x00b"]}, "tags.0"),
        ({"title": "t", "metadata": {"k\n": "v"}}, "metadata"),
        ({"title": "t", "metadata": {"k": "v\x00"}}, "metadata.k"),
    ]
    for extra, field in cases:
        body: dict[str, object] = {"text": "Some lesson text.", **extra}
        error = assert_error(await client.post("/v1/documents", json=body, headers=auth), 422)
        assert error["message"].startswith(field), (field, error)
    assert await _documents(mesh) == 0


async def test_multipart_labels_go_through_the_same_validation(
    client: httpx.AsyncClient, mesh: Mesh
) -> None:
    _, auth = await new_tenant(client, "multipart-labels")
    file = {"file": ("notes.txt", b"Some lesson text.", "text/plain")}
    cases = [
        ({"title": "a\x1b[31mb"}, "title"),
        ({"tags": '["fine", "bad\\u0007"]'}, "tags.1"),
        ({"metadata": '{"author": "\\u202eevil"}'}, "metadata.author"),
    ]
    for data, field in cases:
        response = await client.post("/v1/documents", data=data, files=file, headers=auth)
        error = assert_error(response, 422)
        assert error["message"].startswith(field), (field, error)
    # A file name is a label too (it becomes the title when none is given): RFC 5987 lets a
    # client percent-encode any byte into it.
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''x%1B%5B2Jy%0D%0A.txt\r\n"
        "Content-Type: text/plain\r\n\r\nSome lesson text.\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    headers = {**auth, "content-type": f"multipart/form-data; boundary={boundary}"}
    error = assert_error(await client.post("/v1/documents", content=body, headers=headers), 422)
    assert error["message"].startswith("file:"), error
    assert await _documents(mesh) == 0


async def test_titles_a_document_supplies_are_cleaned_not_trusted(
    client: httpx.AsyncClient,
) -> None:
    """An HTML <title> is the document's, not the caller's: its control characters become spaces
    (refusing the upload would punish the uploader for the file's author)."""
    _, auth = await new_tenant(client, "extracted-title")
    html = b"<html><head><title>Wings\x1b[2J\r\nand\x07lift</title></head><body><p>Lift.</p></body></html>"
    file = {"file": ("page.html", html, "text/html")}
    response = await client.post("/v1/documents", files=file, headers=auth)
    assert response.status_code == 202, response.text
    document_id = response.json()["document_id"]
    detail = (await client.get(f"/v1/documents/{document_id}", headers=auth)).json()
    assert detail["title"] == "Wings [2J and lift", detail["title"]


async def test_names_and_session_titles_refuse_control_characters(
    client: httpx.AsyncClient,
) -> None:
    operator = {"authorization": f"Bearer {OPERATOR_TOKEN}"}
    error = assert_error(
        await client.post("/v1/tenants", json={"name": ANSI}, headers=operator), 422
    )
    assert error["message"].startswith("name")
    _, auth = await new_tenant(client, "names")
    user = {"email": "ada@school.edu", "password": "a long passphrase", "role": "teacher"}
    for name in ("Ada\x00", "Ada\u202eLovelace", "Ada\nAdmin"):
        response = await client.post("/v1/auth/register", json={**user, "name": name}, headers=auth)
        assert assert_error(response, 422)["message"].startswith("name")
        response = await client.post("/v1/api-keys", json={"name": name}, headers=auth)
        assert assert_error(response, 422)["message"].startswith("name")
        response = await client.post("/v1/chat/sessions", json={"title": name}, headers=auth)
        assert assert_error(response, 422)["message"].startswith("title")
    assert (await client.get("/v1/chat/sessions", headers=auth)).json()["sessions"] == []


# --- loose types and list parameters ---------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "x", "top_k": True}, "top_k"),
        ({"query": "x", "top_k": "5"}, "top_k"),
        ({"query": "x", "rerank": "no"}, "rerank"),
        ({"query": "x", "dense_weight": "0.5"}, "dense_weight"),
    ],
)
async def test_search_types_are_strict(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    _, auth = await new_tenant(client, "types")
    error = assert_error(await client.post("/v1/search", json=body, headers=auth), 422)
    assert error["message"].startswith(field), error


async def test_document_list_limits_and_cursors(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "pages")
    for n in range(3):
        body = {"title": f"Doc {n}", "text": f"Lesson number {n}."}
        assert (await client.post("/v1/documents", json=body, headers=auth)).status_code == 202
    bad = [
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("limit=5.0", "limit"),
        ("limit=", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=d_' OR 1=1 --", "cursor"),
        ("after=garbage", "after"),
        ("cursor=d_" + "0" * 24 + "&after=d_" + "0" * 24, "after"),
        ("page=2", "page"),
    ]
    for query, field in bad:
        response = await client.get(f"/v1/documents?{query}", headers=auth)
        error = assert_error(response, 422, "validation_error")
        assert error["message"].startswith(field), (query, error)
    first = (await client.get("/v1/documents?limit=2", headers=auth)).json()
    assert len(first["documents"]) == 2 and first["next_cursor"]
    for name in ("cursor", "after"):  # `after` is the older name of the same cursor
        rest = await client.get(
            f"/v1/documents?limit=2&{name}={first['next_cursor']}", headers=auth
        )
        assert rest.status_code == 200, rest.text
        assert len(rest.json()["documents"]) == 1 and rest.json()["next_cursor"] is None
    everything = (await client.get("/v1/documents", headers=auth)).json()["documents"]
    assert [d["id"] for d in everything] == [
        d["id"] for d in first["documents"] + rest.json()["documents"]
    ]


@pytest.mark.parametrize(
    "route", ["/v1/users", "/v1/api-keys", "/v1/relationships", "/v1/chat/sessions"]
)
async def test_unpaginated_lists_refuse_limits_and_cursors(
    client: httpx.AsyncClient, route: str
) -> None:
    _, auth = await new_tenant(client, "lists")
    assert (await client.get(route, headers=auth)).status_code == 200
    for query, field in (("limit=-1", "limit"), ("cursor=garbage", "cursor"), ("x=1", "x")):
        response = await client.get(f"{route}?{query}", headers=auth)
        error = assert_error(response, 422, "validation_error")
        assert error["message"].startswith(field), (route, query, error)
