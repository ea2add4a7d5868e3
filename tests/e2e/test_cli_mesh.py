"""The bulk loader against the real mesh (ASGI in-process): re-runs, changed files, visibility."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import httpx

from edgerag_cli import build_parser, run_load
from emulator.dev import AsgiGateway
from emulator.mesh import Mesh

from .conftest import new_tenant


async def load(mesh: Mesh, folder: Path, key: str, *extra: str) -> tuple[int, str]:
    args: argparse.Namespace = build_parser().parse_args(
        ["load", str(folder), "--api-key", key, "--no-progress", "--poll-interval", "0.05", *extra]
    )
    args.source = args.source or folder.name
    out, err = io.StringIO(), io.StringIO()
    code = await run_load(
        args, transport=httpx.ASGITransport(app=AsgiGateway(mesh)), stdout=out, stderr=err
    )
    return code, out.getvalue() + err.getvalue()


async def documents(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/v1/documents", headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json()["documents"])


async def test_changed_files_become_versions_and_visibility_counts(
    client: httpx.AsyncClient, mesh: Mesh, tmp_path: Path
) -> None:
    _, auth = await new_tenant(client, "loader")
    key = auth["authorization"].removeprefix("Bearer ")
    folder = tmp_path / "physics"
    (folder / "sub").mkdir(parents=True)
    (folder / "lift.md").write_text("# Lift\n\nWings lift because they turn air downwards.")
    (folder / "sub" / "drag.txt").write_text("Drag is the resistance of the air.")
    (folder / "sub" / "data.csv").write_text("speed,lift\n1,1\n")

    code, out = await load(mesh, folder, key)
    assert code == 0, out
    assert "loaded 2, updated 0, unchanged 0, failed 0 (of 2 files)" in out
    assert "skipped (unsupported): 1\n  sub/data.csv" in out
    first = {d["metadata"]["source_path"]: d for d in await documents(client, auth)}
    assert set(first) == {"lift.md", "sub/drag.txt"}
    assert {d["metadata"]["source"] for d in first.values()} == {"physics"}

    code, out = await load(mesh, folder, key)
    assert "loaded 0, updated 0, unchanged 2, failed 0" in out, out

    (folder / "lift.md").write_text(
        "# Lift\n\nWings lift: the pressure below exceeds the pressure above."
    )
    code, out = await load(mesh, folder, key)
    assert code == 0, out
    assert "loaded 0, updated 1, unchanged 1, failed 0" in out
    after = await documents(client, auth)
    assert len(after) == 2  # a new version, not a second document
    lift = next(d for d in after if d["metadata"]["source_path"] == "lift.md")
    assert lift["id"] == first["lift.md"]["id"] and lift["latest_version"] == 2
    assert lift["status"] == "ready"

    code, out = await load(mesh, folder, key, "--visibility", "private")
    assert code == 0, out
    assert "loaded 2, updated 0, unchanged 0, failed 0" in out
    assert sorted(d["visibility"] for d in await documents(client, auth)) == [
        "private",
        "private",
        "tenant",
        "tenant",
    ]
