"""Tenant scoping as structure: every D1 statement binds the tenant as ?1, every vector lives in
the tenant's namespace, every KV and R2 key starts with the tenant's prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from kernel.bindings.env import Bindings
from kernel.bindings.ports import Database, QueryResult, SqlValue, Statement
from kernel.bindings.services import (
    PRINCIPAL_HEADER,
    ROLE_HEADER,
    STUDENTS_HEADER,
    TEACHERS_HEADER,
    TENANT_HEADER,
)
from kernel.runtime.errors import ApiError
from kernel.runtime.http import Request

_TENANT_ID = re.compile(r"^t_[0-9a-f]{24}$")
_BINDS_TENANT = re.compile(r"tenant_id\s*=\s*\?1\b")


class MissingTenant(ApiError):
    status = 500
    code = "internal_error"


UNRESTRICTED_ROLES = frozenset({"admin"})
VECTOR_IN_MAX = 40  # values per `$in` (Vectorize filters are ≤2 KB of JSON)


@dataclass(frozen=True)
class Viewer:
    """Who reads inside the tenant, reduced to what they may see.

    Document visibility: `tenant` — every member; `private` — the owner and admins;
    `students` — the owner, the owner's students and admins. A viewer sees a document when
    (visibility = tenant) OR (owner = me) OR (visibility = students AND owner ∈ my teachers).
    Vectorize has no OR, so each disjunct is its own vector filter (`vector_clauses`) and search
    merges the queries; SQL gets the same condition as one clause (`sql`).
    """

    principal_id: str
    role: str
    teachers: tuple[str, ...] = ()
    # A teacher's students: not a document scope, but whose context the teacher may read.
    students: tuple[str, ...] = field(default=(), compare=False)

    @property
    def unrestricted(self) -> bool:
        return self.role in UNRESTRICTED_ROLES

    def vector_clauses(self) -> list[dict[str, object]] | None:
        """One Vectorize filter per visibility disjunct; None = no restriction (admins)."""
        if self.unrestricted:
            return None
        clauses: list[dict[str, object]] = [{"visibility": {"$eq": "tenant"}}]
        if self.principal_id:
            clauses.append({"owner_id": {"$eq": self.principal_id}})
        teachers = sorted(set(self.teachers))
        for start in range(0, len(teachers), VECTOR_IN_MAX):
            part = teachers[start : start + VECTOR_IN_MAX]
            clauses.append({"visibility": {"$eq": "students"}, "owner_id": {"$in": part}})
        return clauses

    def sql(self, alias: str, first_param: int) -> tuple[str, list[SqlValue]]:
        """` AND (...)` over the documents table `alias`, params numbered from first_param."""
        if self.unrestricted:
            return "", []
        parts = [f"{alias}.visibility = 'tenant'"]
        params: list[SqlValue] = []
        if self.principal_id:
            parts.append(f"{alias}.owner_id = ?{first_param}")
            params.append(self.principal_id)
        teachers = sorted(set(self.teachers))
        if teachers:
            start = first_param + len(params)
            marks = ", ".join(f"?{start + i}" for i in range(len(teachers)))
            parts.append(f"({alias}.visibility = 'students' AND {alias}.owner_id IN ({marks}))")
            params.extend(teachers)
        return f" AND ({' OR '.join(parts)})", params

    def cache_scope(self) -> str:
        """What cached results may be shared on: the visibility scope, not the identity."""
        clauses = self.vector_clauses()
        return "all" if clauses is None else json.dumps(clauses, sort_keys=True)


@dataclass(frozen=True)
class TenantScope:
    tenant_id: str
    # None = code acting for the tenant itself (jobs, benchmarks); every request that reaches a
    # Worker carries a viewer (scope_from_request), restricted when no principal is named.
    viewer: Viewer | None = field(default=None, compare=False)

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
    teachers = tuple(t for t in (request.header(TEACHERS_HEADER) or "").split(",") if t)
    students = tuple(t for t in (request.header(STUDENTS_HEADER) or "").split(",") if t)
    viewer = Viewer(
        principal_id=request.header(PRINCIPAL_HEADER) or "",
        role=request.header(ROLE_HEADER) or "",
        teachers=teachers,
        students=students,
    )
    return TenantScope(request.header(TENANT_HEADER) or "", viewer)


def tenant_db(bindings: Bindings, request: Request) -> TenantDB:
    """A handler's database: the DB binding scoped to the tenant (and viewer) the gateway sent."""
    return TenantDB(bindings.need(bindings.db, "DB"), scope_from_request(request))


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
