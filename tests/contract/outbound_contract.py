"""Contract for `kernel.bindings.ports.Outbound` (fetching URL documents). Mixed into a class that
provides `outbound` and `upstream`.

`upstream` is the fake remote web server the implementation is wired to: it answers
`UPSTREAM_BASE` + the paths in `ROUTES` (described as data here so the module stays
portable) and records each path it was asked for in `upstream.requests`. Nothing here may
reach a real network; the wiring decides how the routes are served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import pytest

from kernel.bindings.ports import BindingError, FetchedResource, Outbound, OutboundError

CAP = 64 * 1024  # max_bytes used throughout
TIMEOUT = 0.3  # seconds; /slow and /slow-body stall far longer than this
STALL_S = 30.0
UPSTREAM_HOST = "docs.example.com"  # resolves (in the fake resolver) to a public address
UPSTREAM_BASE = f"https://{UPSTREAM_HOST}"
DOC_HTML = b"<!doctype html><html><head><title>Doc</title></head><body><p>Hello.</p></body></html>"


@dataclass(frozen=True)
class Route:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunks: int = 0  # > 0: stream `body` this many times, without Content-Length
    delay_s: float = 0.0  # before the response headers
    body_delay_s: float = 0.0  # after the first chunk of the body


def _redirect(location: str, status: int = 302) -> Route:
    return Route(status=status, headers=(("location", location),))


ROUTES: dict[str, Route] = {
    "/doc.html": Route(headers=(("content-type", "text/html; charset=utf-8"),), body=DOC_HTML),
    "/untyped": Route(body=b"no content type"),
    "/exactly-cap": Route(headers=(("content-type", "text/plain"),), body=b"x" * CAP),
    "/big": Route(headers=(("content-type", "application/pdf"),), body=b"x" * (CAP + 1)),
    "/big-stream": Route(
        headers=(("content-type", "application/pdf"),), body=b"y" * 8192, chunks=10_000
    ),
    "/slow": Route(headers=(("content-type", "text/plain"),), body=b"late", delay_s=STALL_S),
    "/slow-body": Route(
        headers=(("content-type", "text/plain"),), body=b"z" * 100, chunks=2, body_delay_s=STALL_S
    ),
    "/redirect-ok": _redirect("/doc.html"),
    "/redirect-absolute": _redirect(f"{UPSTREAM_BASE}/doc.html", 301),
    "/chain-3": _redirect("/chain-2", 307),
    "/chain-2": _redirect("/chain-1", 308),
    "/chain-1": _redirect("/doc.html", 303),
    "/redirect-private": _redirect("http://127.0.0.1/"),
    "/redirect-metadata": _redirect("http://169.254.169.254/latest/meta-data/", 307),
    "/redirect-localhost": _redirect("http://localhost:8080/admin"),
    "/redirect-scheme": _redirect("file:///etc/passwd"),
    "/redirect-loop": _redirect("/redirect-loop"),
    "/no-location": Route(status=302),
    "/404": Route(status=404, headers=(("content-type", "text/plain"),), body=b"not here"),
    "/500": Route(status=500, body=b"oops"),
}


class Upstream(Protocol):
    requests: list[str]


# URLs refused before anything is sent, with the reason the API client will see.
REFUSED_URLS = [
    ("ftp://docs.example.com/file.pdf", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("docs.example.com/doc.html", "scheme"),
    ("http://127.0.0.1/", "private_address"),
    ("http://2130706433/", "private_address"),
    ("http://0x7f.1/", "private_address"),
    ("http://[::1]/", "private_address"),
    ("http://[::ffff:10.0.0.1]/", "private_address"),
    ("http://169.254.169.254/latest/meta-data/", "private_address"),
    ("http://localhost:8080/", "private_address"),
    ("http://metadata.google.internal/", "private_address"),
    ("http://user:secret@docs.example.com/doc.html", "invalid_url"),
    ("http://docs.example.com:22/", "invalid_url"),
]


class OutboundContract:
    @pytest.fixture
    def outbound(self) -> Outbound:
        raise NotImplementedError("the implementing test class provides `outbound`")

    @pytest.fixture
    def upstream(self) -> Upstream:
        raise NotImplementedError("the implementing test class provides `upstream`")

    @staticmethod
    async def fetch(outbound: Outbound, path_or_url: str, **kwargs: object) -> FetchedResource:
        url = UPSTREAM_BASE + path_or_url if path_or_url.startswith("/") else path_or_url
        options: dict[str, object] = {"max_bytes": CAP, "timeout_s": TIMEOUT, **kwargs}
        return await outbound.fetch(url, **options)  # type: ignore[arg-type]

    @staticmethod
    async def refused(outbound: Outbound, path_or_url: str, **kwargs: object) -> OutboundError:
        with pytest.raises(OutboundError) as info:
            await OutboundContract.fetch(outbound, path_or_url, **kwargs)
        assert str(info.value), "the message is shown to the API client"
        return info.value

    async def test_implements_port(self, outbound: Outbound) -> None:
        assert isinstance(outbound, Outbound)
        assert issubclass(OutboundError, BindingError)

    async def test_fetch_document(self, outbound: Outbound, upstream: Upstream) -> None:
        res = await self.fetch(outbound, "/doc.html")
        assert res.status == 200
        assert res.body == DOC_HTML
        assert res.content_type == "text/html; charset=utf-8"
        assert res.url == res.final_url == f"{UPSTREAM_BASE}/doc.html"
        assert upstream.requests == ["/doc.html"]

    async def test_url_is_normalised(self, outbound: Outbound) -> None:
        res = await self.fetch(outbound, "HTTPS://Docs.Example.COM:443/doc.html#section-2")
        assert res.url == f"{UPSTREAM_BASE}/doc.html"
        assert res.body == DOC_HTML

    async def test_missing_content_type_is_none(self, outbound: Outbound) -> None:
        res = await self.fetch(outbound, "/untyped")
        assert res.content_type is None
        assert res.body == b"no content type"

    async def test_body_of_exactly_the_cap_is_accepted(self, outbound: Outbound) -> None:
        res = await self.fetch(outbound, "/exactly-cap")
        assert len(res.body) == CAP

    @pytest.mark.parametrize("path", ["/big", "/big-stream"])
    async def test_too_large(self, outbound: Outbound, path: str) -> None:
        err = await self.refused(outbound, path)
        assert err.reason == "too_large"
        assert "64 KiB" in str(err)

    @pytest.mark.parametrize("path", ["/slow", "/slow-body"])
    async def test_timeout(self, outbound: Outbound, path: str) -> None:
        began = time.monotonic()
        err = await self.refused(outbound, path)
        assert err.reason == "timeout"
        assert time.monotonic() - began < STALL_S / 3  # gave up, did not wait for the server

    @pytest.mark.parametrize("path", ["/redirect-ok", "/redirect-absolute"])
    async def test_follows_redirects(self, outbound: Outbound, path: str) -> None:
        res = await self.fetch(outbound, path)
        assert res.url == f"{UPSTREAM_BASE}{path}"
        assert res.final_url == f"{UPSTREAM_BASE}/doc.html"
        assert res.body == DOC_HTML

    async def test_redirect_limit(self, outbound: Outbound, upstream: Upstream) -> None:
        res = await self.fetch(outbound, "/chain-3", max_redirects=3)
        assert res.final_url.endswith("/doc.html")
        upstream.requests.clear()
        err = await self.refused(outbound, "/chain-3", max_redirects=2)
        assert err.reason == "redirects"
        assert upstream.requests == ["/chain-3", "/chain-2", "/chain-1"]
        err = await self.refused(outbound, "/redirect-ok", max_redirects=0)
        assert err.reason == "redirects"

    async def test_redirect_loop(self, outbound: Outbound) -> None:
        assert (await self.refused(outbound, "/redirect-loop")).reason == "redirects"

    @pytest.mark.parametrize(
        ("path", "reason"),
        [
            ("/redirect-private", "private_address"),
            ("/redirect-metadata", "private_address"),
            ("/redirect-localhost", "private_address"),
            ("/redirect-scheme", "scheme"),
        ],
    )
    async def test_every_redirect_hop_is_checked(
        self, outbound: Outbound, upstream: Upstream, path: str, reason: str
    ) -> None:
        err = await self.refused(outbound, path)
        assert err.reason == reason
        assert upstream.requests == [path]  # the refused hop was never requested

    @pytest.mark.parametrize(
        ("path", "status"), [("/404", 404), ("/500", 500), ("/no-location", 302)]
    )
    async def test_error_status(self, outbound: Outbound, path: str, status: int) -> None:
        err = await self.refused(outbound, path)
        assert err.reason == "http_status"
        assert err.status == status
        assert str(status) in str(err)

    @pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
    async def test_refused_before_contact(
        self, outbound: Outbound, upstream: Upstream, url: str, reason: str
    ) -> None:
        err = await self.refused(outbound, url)
        assert err.reason == reason
        assert upstream.requests == []

    async def test_bad_arguments(self, outbound: Outbound) -> None:
        for kwargs in ({"max_bytes": 0}, {"timeout_s": 0}, {"max_redirects": -1}):
            with pytest.raises(ValueError):
                await self.fetch(outbound, "/doc.html", **kwargs)
