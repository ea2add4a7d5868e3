"""The web console's files: the gateway's /console rows over an ASSETS binding (gateway.console),
and the emulator's stand-in for Workers Static Assets (emulator.assets)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import pytest

from emulator.assets import EmulatedAssets, assets_directory
from gateway import console
from gateway.app import build_app
from kernel.bindings.ports import ServiceResponse
from kernel.runtime.http import Request, Response

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<!doctype html><title>x</title>")
    (tmp_path / "app.js").write_text("export const x = 1;\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.css").write_text("a{}")
    (tmp_path / ".secret").write_text("no")
    (tmp_path / "draft.js").write_text("no")
    (tmp_path / ".assetsignore").write_text("# not uploaded\ndraft.js\n")
    (tmp_path.parent / "outside.txt").write_text("no")
    return tmp_path


async def _get(assets: EmulatedAssets, path: str, **headers: str) -> ServiceResponse:
    return await assets.fetch("GET", path, headers=headers)


async def test_exact_paths_with_type_etag_and_revalidation(folder: Path) -> None:
    assets = EmulatedAssets(folder)
    page = await _get(assets, "/index.html")
    assert page.status == 200 and page.body.startswith(b"<!doctype html>")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "public, max-age=0, must-revalidate"
    etag = page.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    script = await _get(assets, "/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert (await _get(assets, "/sub/deep.css")).headers["content-type"].startswith("text/css")
    again = await _get(assets, "/index.html", **{"if-none-match": etag})
    assert again.status == 304 and again.body == b"" and again.headers["etag"] == etag
    stale = await _get(assets, "/index.html", **{"if-none-match": '"other"'})
    assert stale.status == 200
    head = await assets.fetch("HEAD", "/app.js", headers={})
    assert head.status == 200 and head.body == b"" and head.headers["etag"]
    assert (await assets.fetch("POST", "/app.js", headers={}, body=b"x")).status == 405


@pytest.mark.parametrize(
    "path",
    [
        "/",  # html_handling = "none": no index for a folder
        "/index",  # …and no extension added
        "/sub",
        "/missing.js",
        "/.secret",
        "/.assetsignore",
        "/draft.js",  # listed in .assetsignore: never uploaded, so never served
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/sub/..%2f..%2foutside.txt",
        "/sub//deep.css",
    ],
)
async def test_everything_else_is_a_404(folder: Path, path: str) -> None:
    assert (await _get(EmulatedAssets(folder), path)).status == 404


def test_the_emulator_serves_the_folder_the_gateways_config_names() -> None:
    directory = assets_directory(ROOT / "wrangler.toml")
    assert directory == ROOT / "console"
    assert (directory / "index.html").is_file()


# --- the gateway's rows ---------------------------------------------------------------------


class FakeAssets:
    adapter_kind = "emulator"

    def __init__(self, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.status, self.headers = status, dict(headers or {"etag": '"v1"'})
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    async def fetch(
        self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> ServiceResponse:
        self.asked.append((method, path, dict(headers)))
        return ServiceResponse(self.status, self.headers, b"bytes" if self.status == 200 else b"")


async def _gateway(path: str, env: object, **headers: str) -> Response:
    app = build_app(env)
    return await app.handle(Request("GET", f"https://edge.example{path}", headers=headers))


async def test_the_gateway_names_type_cache_and_csp_and_keeps_the_other_headers() -> None:
    assets = FakeAssets(headers={"etag": '"v1"', "content-type": "application/octet-stream"})
    page = await _gateway("/console", SimpleNamespace(ASSETS=assets))
    assert page.status == 200 and page.body == b"bytes"
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    assert page.headers["cache-control"] == "no-cache" and page.headers["etag"] == '"v1"'
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in page.headers  # same origin: no CORS
    script = await _gateway("/console/app.js", SimpleNamespace(ASSETS=assets))
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert [(m, p) for m, p, _ in assets.asked] == [("GET", "/index.html"), ("GET", "/app.js")]


async def test_conditional_requests_reach_the_assets_and_304s_come_back() -> None:
    assets = FakeAssets(status=304)
    reply = await _gateway(
        "/console/app.css", SimpleNamespace(ASSETS=assets), **{"if-none-match": '"v1"'}
    )
    assert reply.status == 304 and reply.body == b"" and reply.headers["etag"] == '"v1"'
    assert assets.asked[0][2]["if-none-match"] == '"v1"'


@pytest.mark.parametrize(
    "path", ["/console/App.js", "/console/app.exe", "/console/.assetsignore", "/console/a%2Fb.js"]
)
async def test_names_outside_the_consoles_pattern_never_reach_the_binding(path: str) -> None:
    assets = FakeAssets()
    reply = await _gateway(path, SimpleNamespace(ASSETS=assets))
    assert reply.status == 404 and reply.json()["error"]["code"] == "not_found"
    assert assets.asked == []


async def test_missing_files_broken_assets_and_no_binding() -> None:
    assert (await _gateway("/console/x.js", SimpleNamespace(ASSETS=FakeAssets(404)))).status == 404
    broken = await _gateway("/console/x.js", SimpleNamespace(ASSETS=FakeAssets(500)))
    assert broken.status == 502 and broken.json()["error"]["code"] == "upstream_error"
    unbound = await _gateway("/console", SimpleNamespace())
    assert unbound.status == 503


def test_every_name_the_page_uses_matches_the_gateways_pattern() -> None:
    names = [p.name for p in (ROOT / "console").iterdir() if not p.name.startswith(".")]
    assert "index.html" in names and "app.js" in names
    for name in names:
        assert console._NAME.match(name), name
