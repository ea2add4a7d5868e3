"""The web console (`console/` in the repository): its files, served through the route table.

The gateway never opens a file (a Python Worker has none to open): it asks its `ASSETS`
binding — on Cloudflare, Workers Static Assets (`[assets]` in wrangler.toml, with
`run_worker_first` so every request still passes this table and its headers); in the emulator,
`emulator.assets` reading the same folder. The content type, the caching and the console's
Content-Security-Policy are set here, so they are the same wherever the bytes come from; the
pipeline adds the other security headers (gateway.cors) without overriding these.
"""

from __future__ import annotations

import re

from gateway.context import Gateway
from kernel.bindings.services import call
from kernel.runtime.errors import NotFound, UpstreamError
from kernel.runtime.http import Request, Response

BINDING = {"ASSETS": "assets"}  # binding name -> the host its requests are addressed to

# The console is flat: one folder of plain files, no build step, no hashed names.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(html|js|css|svg|png|ico)$")
TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
}
# Everything from this origin only; no inline script or style, no frames, no <base>.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Unhashed names: a browser keeps its copy but asks each time (a 304 when unchanged), so a
# deploy never leaves a page running with a stale module beside a fresh one.
CACHE_CONTROL = "no-cache"


async def index(gw: Gateway, request: Request) -> Response:
    """`GET /console`: the page."""
    return await _serve(gw, request, "index.html")


async def asset(gw: Gateway, request: Request) -> Response:
    """`GET /console/{asset}`: one of its files."""
    name = request.params["asset"]
    if not _NAME.match(name):
        raise NotFound(f"no console file {name[:80]}")
    return await _serve(gw, request, name)


async def _serve(gw: Gateway, request: Request, name: str) -> Response:
    conditional = request.header("if-none-match")
    upstream = await call(
        gw.b.service("ASSETS"),
        "GET",
        f"/{name}",
        request_id=request.request_id,
        extra_headers={"if-none-match": conditional} if conditional else None,
    )
    if upstream.status == 404:
        raise NotFound(f"no console file {name}")
    if upstream.status not in (200, 304):
        raise UpstreamError(f"the console's assets answered {upstream.status}")
    headers = {
        "content-type": TYPES[name.rsplit(".", 1)[1]],
        "cache-control": CACHE_CONTROL,
        "content-security-policy": CSP,
    }
    if etag := upstream.headers.get("etag"):
        headers["etag"] = etag
    body = upstream.body if upstream.status == 200 else b""
    return Response(status=upstream.status, body=body, headers=headers)
