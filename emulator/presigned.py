"""R2's S3-compatible endpoint for presigned URLs, as the dev server serves it at `/r2/`.

`PUT /r2/<bucket>/<key>?X-Amz-…` stores the body in the emulated bucket and `GET` reads it,
each only when the presigned query holds (kernel.domain.sigv4.verify, the code the Worker signs
with): unexpired, unaltered, and for uploads with exactly the signed `content-length`,
`content-type`, `x-amz-checksum-sha256` (the body's SHA-256, base64, checked as R2 checks it)
and `if-none-match: *` (R2's conditional PUT: a URL cannot overwrite, so it cannot be replayed).
Errors answer in S3's XML shape with S3's codes, as R2 does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from kernel.domain.sigv4 import Credentials, Refused, verify

Reply = tuple[int, dict[str, str], bytes]


def _error(status: int, code: str, message: str) -> Reply:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return status, {"content-type": "application/xml"}, body.encode()


async def handle(
    r2: Any,
    creds: Credentials,
    bucket: str,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> Reply:
    prefix = f"/r2/{bucket}/"
    if not path.startswith(prefix) or method not in ("GET", "PUT"):
        return _error(404, "NoSuchBucket", "unknown bucket or method")
    key = path[len(prefix) :]
    try:
        verify(creds, method, host, path, query, headers)
    except Refused as exc:
        return _error(403, "AccessDenied", str(exc))
    lowered = {k.lower(): v for k, v in headers.items()}
    if method == "GET":
        found = await r2.get(key)
        if found is None:
            return _error(404, "NoSuchKey", "the object does not exist")
        return (
            200,
            {"content-type": found.info.content_type or "application/octet-stream"},
            found.data,
        )
    if lowered.get("content-length") != str(len(body)):
        return _error(400, "IncompleteBody", "the body is not the signed content-length")
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if lowered.get("x-amz-checksum-sha256") != checksum:
        return _error(400, "BadDigest", "the body's SHA-256 is not the signed checksum")
    if lowered.get("if-none-match") == "*" and await r2.head(key) is not None:
        return _error(412, "PreconditionFailed", "the object exists already")
    await r2.put(
        key,
        body,
        content_type=lowered.get("content-type"),
        custom_metadata={"sha256": hashlib.sha256(body).hexdigest()},
    )
    return 200, {"etag": hashlib.md5(body, usedforsecurity=False).hexdigest()}, b""
