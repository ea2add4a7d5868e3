"""Tenant scoping as structure: every D1 statement binds the tenant as ?1, every vector lives in
the tenant's namespace, every KV and R2 key starts with the tenant's prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kernel.errors import ApiError
from kernel.http import Request
from kernel.ports import Database, QueryResult, SqlValue, Statement
from kernel.services import TENANT_HEADER

_TENANT_ID = re.compile(r"^t_[0-9a-f]{24}$")
_BINDS_TENANT = re.compile(r"tenant_id\s*=\s*\?1\b")


class MissingTenant(ApiError):
    status = 500
    code = "internal_error"


@dataclass(frozen=True)
class TenantScope:
    tenant_id: str

    def __post_init__(self) -> None:
        if not _TENANT_ID.match(self.tenant_id):
            raise MissingTenant("internal call without a valid tenant")

    @property
    def namespace(self) -> str:
        """Vectorize namespace (≤64 bytes)."""
        return self.tenant_id

    def kv_key(self, *parts: str) -> str:
        return "/".join(("t", self.tenant_id, *parts))

    def r2_key(self, *parts: str) -> str:
        return "/".join(("t", self.tenant_id, *parts))


def scope_from_request(request: Request) -> TenantScope:
    """Internal Workers trust this header only because the gateway is their sole caller."""
    return TenantScope(request.header(TENANT_HEADER) or "")


class TenantDB:
    """The one data-access path for tenant data: it refuses SQL that does not bind `tenant_id = ?1`."""

    def __init__(self, db: Database, scope: TenantScope) -> None:
        self._db = db
        self.scope = scope

    def statement(self, sql: str, params: Sequence[SqlValue] = ()) -> Statement:
        if not _BINDS_TENANT.search(sql) and not sql.lstrip().upper().startswith("INSERT"):
            raise MissingTenant("tenant-scoped SQL must constrain tenant_id = ?1")
        if sql.lstrip().upper().startswith("INSERT") and "?1" not in sql:
            raise MissingTenant("tenant-scoped INSERT must bind tenant_id as ?1")
        return Statement(sql, (self.scope.tenant_id, *params))

    async def execute(self, sql: str, params: Sequence[SqlValue] = ()) -> QueryResult:
        stmt = self.statement(sql, params)
        return await self._db.execute(stmt.sql, stmt.params)

    async def run(self, statement: Statement) -> QueryResult:
        """Execute a statement built by `statement()` (tenant already bound)."""
        return await self._db.execute(statement.sql, statement.params)

    async def batch(self, statements: Sequence[Statement]) -> list[QueryResult]:
        """Statements must come from `statement()`; D1 runs a batch as one transaction."""
        return await self._db.batch(statements)
