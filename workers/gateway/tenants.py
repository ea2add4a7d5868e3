"""Tenant registry: creating a tenant issues its first admin API key in the same D1 batch."""

from __future__ import annotations

from gateway.auth import new_api_key
from kernel.bindings.ports import Database, Statement
from kernel.runtime.ids import new_id


async def create_tenant(db: Database, name: str) -> dict[str, str]:
    tenant_id = new_id("t")
    key_id = new_id("key")
    api_key, key_hash = new_api_key()
    await db.batch(
        [
            Statement("INSERT INTO tenants (id, name) VALUES (?1, ?2)", (tenant_id, name)),
            Statement(
                "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, role) VALUES (?1, ?2, ?3, ?4, 'admin')",
                (key_id, tenant_id, key_hash, api_key[:8]),
            ),
        ]
    )
    return {"tenant_id": tenant_id, "name": name, "api_key": api_key, "api_key_id": key_id}
