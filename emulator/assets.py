"""Workers Static Assets, emulated: the gateway's `ASSETS` binding over the folder its
wrangler.toml names (`[assets] directory`), read from disk by the emulator — never by Worker code.

What it does is what Cloudflare's asset server does with the configuration the gateway
declares (`html_handling = "none"`, `not_found_handling = "none"`): a GET or HEAD of an exact
path answers that file, with a content type from its extension, a strong ETag and `Cache-Control:
public, max-age=0, must-revalidate`; `If-None-Match` with the current ETag is a 304; any other
path is a 404 (no `/index.html` ↔ `/` redirects, no SPA fallback). Names outside the folder,
hidden files and `.assetsignore`d patterns are never served.
"""

from __future__ import annotations

import fnmatch
import hashlib
import mimetypes
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

from kernel.bindings.ports import ServiceResponse

TYPES = {  # as Cloudflare names them (mimetypes varies with the host's /etc/mime.types)
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain",
}
CACHE_CONTROL = "public, max-age=0, must-revalidate"


def assets_directory(wrangler_toml: Path) -> Path | None:
    """The `[assets] directory` of a Worker's config, resolved against the config's folder."""
    with wrangler_toml.open("rb") as handle:
        config = tomllib.load(handle)
    directory = config.get("assets", {}).get("directory")
    return (wrangler_toml.parent / directory).resolve() if directory else None


def _content_type(path: Path) -> str:
    kind = TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    kind = kind or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") else kind


class EmulatedAssets:
    """The `Service` port (a Fetcher), as kernel.bindings.services.CloudflareService wraps the
    real binding on Cloudflare."""

    adapter_kind = "emulator"
    name = "assets"

    def __init__(self, directory: Path) -> None:
        self.root = directory.resolve()
        ignore = self.root / ".assetsignore"
        self._ignored = [
            line.strip()
            for line in (ignore.read_text().splitlines() if ignore.is_file() else [])
            if line.strip() and not line.startswith("#")
        ]

    def _file(self, path: str) -> Path | None:
        parts = unquote(path.split("?", 1)[0]).split("/")[1:]
        if not parts or any(p in ("", ".", "..") or p.startswith(".") or "\\" in p for p in parts):
            return None
        relative = "/".join(parts)
        if any(fnmatch.fnmatch(relative, pattern.strip("/")) for pattern in self._ignored):
            return None
        found = self.root.joinpath(*parts).resolve()
        if not found.is_relative_to(self.root) or not found.is_file():
            return None
        return found

    async def fetch(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> ServiceResponse:
        if method not in ("GET", "HEAD"):
            return ServiceResponse(405, {"allow": "GET, HEAD"}, b"")
        found = self._file(path)
        if found is None:
            return ServiceResponse(404, {"content-type": "text/plain; charset=utf-8"}, b"")
        data = found.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        out = {"content-type": _content_type(found), "etag": etag, "cache-control": CACHE_CONTROL}
        wanted = {h.strip() for h in (headers.get("if-none-match") or "").split(",")}
        if etag in wanted or f"W/{etag}" in wanted:
            return ServiceResponse(304, out, b"")
        return ServiceResponse(200, out, b"" if method == "HEAD" else data)
