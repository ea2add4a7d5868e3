"""Direct uploads over HTTP: a presigned R2 PUT (SigV4) to the dev server's emulated R2
endpoint, which enforces what R2 enforces — signature, expiry, exact length, type and
checksum, no overwrite — then confirm and a presigned download; and each failure."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from tests.e2e.conftest import new_tenant

PDF = b"%PDF-1.4\n" + b"0" * 5000 + b"\n%%EOF\n"


def ticket_body(data: bytes, content_type: str = "application/pdf", **extra: Any) -> dict[str, Any]:
    return {
        "filename": "score.pdf",
        "content_type": content_type,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


async def _ticket(client: httpx.AsyncClient, auth: dict[str, str], data: bytes) -> dict[str, Any]:
    made = await client.post("/v1/uploads", json=ticket_body(data), headers=auth)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_the_presigned_round_trip(client: httpx.AsyncClient) -> None:
    _, auth = await new_tenant(client, "uploads")
    ticket = await _ticket(client, auth, PDF)
    assert ticket["method"] == "PUT" and "X-Amz-Signature=" in ticket["url"]
    assert ticket["url"].startswith("http://127.0.0.1:8787/r2/edgerag-originals/t/")
    early = await client.post(f"/v1/uploads/{ticket['upload_id']}/confirm", headers=auth)
    assert early.status_code == 409 and early.json()["error"]["code"] == "upload_missing"
    put = await client.put(ticket["url"], content=PDF, headers=ticket["headers"])
    assert put.status_code == 200, put.text
    done = await client.post(f"/v1/uploads/{ticket['upload_id']}/confirm", headers=auth)
    assert done.status_code == 200 and done.json()["status"] == "confirmed", done.text
    again = await client.put(ticket["url"], content=PDF, headers=ticket["headers"])
    assert again.status_code == 412  # a replayed URL cannot overwrite
    link = (await client.get(f"/v1/uploads/{ticket['upload_id']}/download", headers=auth)).json()
    fetched = await client.get(link["url"])
    assert fetched.status_code == 200 and fetched.content == PDF
    assert fetched.headers["content-type"] == "application/pdf"
    _, other = await new_tenant(client, "elsewhere")
    stranger = await client.post(f"/v1/uploads/{ticket['upload_id']}/confirm", headers=other)
    assert stranger.status_code == 404


async def test_altered_bigger_mistyped_or_expired_puts_are_refused(
    client: httpx.AsyncClient,
) -> None:
    _, auth = await new_tenant(client, "uploads-bad")
    ticket = await _ticket(client, auth, PDF)
    url, headers = ticket["url"], ticket["headers"]
    bigger = PDF + b"x"
    cases = {
        "bigger body": (url, {**headers, "content-length": str(len(bigger))}, bigger),
        "other body": (url, headers, PDF[:-1] + b"!"),
        "other type": (url, {**headers, "content-type": "text/html"}, PDF),
        "other key": (url.replace("/uploads/", "/uploads/x"), headers, PDF),
    }
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    expired = {**params, "X-Amz-Date": "20200101T000000Z"}
    cases["expired"] = (
        f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(expired)}",
        headers,
        PDF,
    )
    longer = {**params, "X-Amz-Expires": "604800"}
    cases["expiry raised"] = (
        f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(longer)}",
        headers,
        PDF,
    )
    for name, (target, sent, body) in cases.items():
        refused = await client.put(target, content=body, headers=sent)
        assert refused.status_code in (400, 403), (name, refused.status_code, refused.text)
        assert refused.headers["content-type"] == "application/xml"
    still = await client.post(f"/v1/uploads/{ticket['upload_id']}/confirm", headers=auth)
    assert still.status_code == 409  # nothing was stored by any of them
    for bad, field in (
        (ticket_body(PDF, content_type="application/x-msdownload"), "content_type"),
        ({**ticket_body(PDF), "size_bytes": 0}, "size_bytes"),
        ({**ticket_body(PDF), "sha256": "abc"}, "sha256"),
        ({**ticket_body(PDF), "size_bytes": 10**12}, "size_bytes"),
    ):
        refused = await client.post("/v1/uploads", json=bad, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"]["fields"][0]["field"] == field
