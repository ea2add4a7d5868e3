"""Tenant API keys: created, listed and revoked by tenant admins. Stored as SHA-256 only."""

from __future__ import annotations

from typing import Any

from gateway.auth import new_api_key
from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import NotFound
from kernel.runtime.ids import new_id

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def insert_key(
    db: TenantDB,
    key_id: str,
    key_hash: str,
    prefix: str,
    role: str,
    name: str | None,
    created_by: str,
) -> Statement:
    return db.statement(
        "INSERT INTO api_keys (tenant_id, id, key_hash, key_prefix, role, name, created_by)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (key_id, key_hash, prefix, role, name, created_by),
    )


def select_keys(db: TenantDB) -> Statement:
    return db.statement(
        "SELECT id, key_prefix, role, name, created_by, created_at, revoked_at FROM api_keys"
        " WHERE tenant_id = ?1 ORDER BY created_at, id"
    )


def revoke_key(db: TenantDB, key_id: str) -> Statement:
    return db.statement(
        f"UPDATE api_keys SET revoked_at = {NOW}"
        " WHERE tenant_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        (key_id,),
    )


async def create(db: TenantDB, role: str, name: str | None, created_by: str) -> dict[str, Any]:
    key_id = new_id("key")
    key, key_hash = new_api_key()
    await db.run(insert_key(db, key_id, key_hash, key[:8], role, name, created_by))
    return {"id": key_id, "api_key": key, "key_prefix": key[:8], "role": role, "name": name}


async def list_keys(db: TenantDB) -> list[dict[str, Any]]:
    return (await db.run(select_keys(db))).rows


async def revoke(db: TenantDB, key_id: str) -> dict[str, Any]:
    if (await db.run(revoke_key(db, key_id))).changes != 1:
        raise NotFound(f"API key {key_id} not found (or already revoked)")
    return {"id": key_id, "revoked": True}
