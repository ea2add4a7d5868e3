"""The model providers and models a tenant allows (tenant settings, owned by the ingest Worker's
`tenant_settings` table), read on every generation and passed to the llm Worker, which only ever
narrows the operator's chain by them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kernel.domain.tenancy import TenantDB


@dataclass(frozen=True)
class ModelAllowance:
    providers: list[str] | None = None  # None: every provider of the deployment's chain
    models: list[str] | None = None


async def model_allowance(db: TenantDB) -> ModelAllowance:
    rows = (
        await db.execute(
            "SELECT llm_providers, llm_models FROM tenant_settings WHERE tenant_id = ?1"
        )
    ).rows
    if not rows:
        return ModelAllowance()
    row = rows[0]
    return ModelAllowance(_list(row["llm_providers"]), _list(row["llm_models"]))


def _list(stored: object) -> list[str] | None:
    return None if stored is None else [str(v) for v in json.loads(str(stored))]
