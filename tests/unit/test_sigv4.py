"""SigV4 presigned URLs: AWS's published example, and verify() refusing what R2 refuses."""

from __future__ import annotations

import calendar
from urllib.parse import parse_qsl, urlsplit

import pytest

from kernel.domain.sigv4 import Credentials, Refused, presign, verify

AWS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
MAY_24_2013 = calendar.timegm((2013, 5, 24, 0, 0, 0))


def test_the_aws_documented_presigned_get() -> None:
    # docs.aws.amazon.com, "Authenticating Requests: Using Query Parameters", the GET example.
    url = presign(
        AWS,
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        expires_s=86400,
        now=MAY_24_2013,
        region="us-east-1",
    )
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["X-Amz-Signature"] == (
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    assert params["X-Amz-SignedHeaders"] == "host"


def _check(url: str, method: str, headers: dict[str, str], now: float) -> None:
    parts = urlsplit(url)
    verify(AWS, method, parts.netloc, parts.path, dict(parse_qsl(parts.query)), headers, now=now)


def test_verify_accepts_the_signed_request_and_refuses_changes() -> None:
    signed = {"content-length": "10", "content-type": "application/pdf"}
    url = presign(
        AWS,
        "PUT",
        "http://127.0.0.1:8787/r2/b/t/x/uploads/u1",
        expires_s=600,
        headers=signed,
        now=MAY_24_2013,
    )
    _check(url, "PUT", signed, MAY_24_2013 + 599)
    for method, headers, when in (
        ("PUT", signed, MAY_24_2013 + 601),  # expired
        ("GET", signed, MAY_24_2013),  # another method
        ("PUT", {**signed, "content-length": "11"}, MAY_24_2013),  # a bigger body
        ("PUT", {**signed, "content-type": "text/html"}, MAY_24_2013),  # another type
    ):
        with pytest.raises(Refused):
            _check(url, method, headers, when)
    with pytest.raises(Refused):
        _check(url.replace("/u1", "/u2"), "PUT", signed, MAY_24_2013)  # another object
    with pytest.raises(ValueError):
        presign(AWS, "GET", "http://x/b/k", expires_s=8 * 24 * 3600)
