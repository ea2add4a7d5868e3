"""Presigned URLs for R2's S3-compatible API: AWS Signature Version 4, query-string form.

R2 takes S3 presigned URLs at `https://<account>.r2.cloudflarestorage.com/<bucket>/<key>`
(region `auto`, service `s3`). The signature covers the method, the path, every `X-Amz-*`
query parameter (expiry included) and the signed headers — here `host`, and for uploads
`content-length` and `content-type` — so a URL cannot be reused for another object, a bigger
body, another type, or after it expires. Pure Python (hmac, hashlib): it runs in the Worker,
and the emulator verifies with the same code.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
REGION = "auto"
SERVICE = "s3"
UNSIGNED = "UNSIGNED-PAYLOAD"
MAX_EXPIRES_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def _uri(path: str) -> str:
    return quote(path, safe="/-_.~")


def _query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            _uri(path),
            _query(params),
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            UNSIGNED,
        ]
    )
    stamp = params["X-Amz-Date"]
    scope = params["X-Amz-Credential"].split("/", 1)[1]  # day/region/service/aws4_request
    region = scope.split("/")[1]
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _signing_key(secret, stamp[:8], region)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def presign(
    creds: Credentials,
    method: str,
    url: str,
    *,
    expires_s: int,
    headers: Mapping[str, str] | None = None,
    now: float | None = None,
    region: str = REGION,
) -> str:
    """`url` (endpoint + /bucket/key) signed for `method` with these exact `headers` (names
    lower-case; `host` is added), valid `expires_s` seconds."""
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise ValueError(f"expires_s must be 1..{MAX_EXPIRES_S}")
    parts = urlsplit(url)
    signed = {"host": parts.netloc, **{k.lower(): str(v) for k, v in (headers or {}).items()}}
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    params = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{creds.access_key_id}/{stamp[:8]}/{region}/{SERVICE}/aws4_request",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(expires_s),
        "X-Amz-SignedHeaders": ";".join(sorted(signed)),
    }
    params["X-Amz-Signature"] = _signature(
        creds.secret_access_key, method, parts.path, params, signed
    )
    return f"{parts.scheme}://{parts.netloc}{_uri(parts.path)}?{_query(params)}"


class Refused(Exception):
    """Why a presigned request does not hold (expired, altered, another body...)."""


def verify(
    creds: Credentials,
    method: str,
    host: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    now: float | None = None,
) -> None:
    """Check a request against its presigned query: what R2 does, for the emulator."""
    try:
        stamp, expires = params["X-Amz-Date"], int(params["X-Amz-Expires"])
        names = params["X-Amz-SignedHeaders"].split(";")
        given = params["X-Amz-Signature"]
        key_id = params["X-Amz-Credential"].split("/")[0]
        issued = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except (KeyError, ValueError) as exc:
        raise Refused("not a presigned URL") from exc
    if params.get("X-Amz-Algorithm") != ALGORITHM or key_id != creds.access_key_id:
        raise Refused("unknown signing key or algorithm")
    current = time.time() if now is None else now
    if current > issued + expires:
        raise Refused("the URL has expired")
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = {n: host if n == "host" else lowered.get(n, "") for n in names}
    unsigned = {k: v for k, v in params.items() if k != "X-Amz-Signature"}
    expected = _signature(creds.secret_access_key, method, path, unsigned, signed)
    if not hmac.compare_digest(expected, given):
        raise Refused("the signature does not match (altered URL, or another body or type)")
