"""Helpers for the identity, roles and limits e2e tests: users, tokens, a tuned mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from emulator.mesh import Mesh, build_mesh
from tests.e2e.conftest import OPERATOR_TOKEN

FAST_HASH = {"EDGERAG_PBKDF2_ITERATIONS": "1000"}  # the default (600k) is covered by unit tests
PASSWORD = "correct horse battery staple"
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}


def tuned_mesh(data_dir: Path, ai: Any, **vars: str) -> Mesh:
    return build_mesh(data_dir, operator_token=OPERATOR_TOKEN, ai=ai, vars={**FAST_HASH, **vars})


def jwt_secret(data_dir: Path) -> tuple[str, bytes]:
    """The dev key the mesh generated (an attacker does not have it; tests forge with it)."""
    config = json.loads((data_dir / "jwt_keys.json").read_text())
    kid = config["active_kid"]
    return kid, config["keys"][kid].encode()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def add_user(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant_id: str,
    role: str,
    email: str,
    name: str = "Someone",
) -> dict[str, Any]:
    """Register (as the tenant admin) and log in; returns the user with `auth` headers."""
    created = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": name, "role": role},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    tokens = await login(client, tenant_id, email)
    return {**created.json(), **tokens, "auth": bearer(tokens["access_token"])}


async def login(
    client: httpx.AsyncClient, tenant_id: str, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/login", json={"email": email, "password": password, "tenant_id": tenant_id}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
