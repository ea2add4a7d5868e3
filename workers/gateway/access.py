"""Roles and document access, decided in the gateway before anything is forwarded.

Roles: `admin` (everything in the tenant: users, API keys, settings, CORS, every document),
`teacher` (uploads documents; changes and deletes the ones they own; manages their students),
`student` (reads and asks: search, answers, chat — never uploads, changes or deletes). The
operator sits above tenants (creates them, sets token budgets) and has no tenant data access.

Reading a document by id follows its visibility exactly as search does (kernel.domain.tenancy.Viewer);
one the caller may not see answers 404, like an id that does not exist, so ids are not
probeable. Writing needs a writer role and, for teachers, ownership (403).
"""

from __future__ import annotations

from gateway.auth import Principal
from gateway.relationships import teachers_of
from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Forbidden, NotFound

WRITERS = frozenset({"admin", "teacher"})


def require_role(principal: Principal, roles: frozenset[str] | set[str], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"{what} needs one of the roles: {', '.join(sorted(roles))}")


async def viewer_for(db: TenantDB, principal: Principal) -> Viewer:
    teachers: tuple[str, ...] = ()
    if principal.role == "student":
        rows = (await db.run(teachers_of(db, principal.id))).rows
        teachers = tuple(str(r["teacher_id"]) for r in rows)
    return Viewer(principal_id=principal.id, role=principal.role, teachers=teachers)


def select_visible_document(db: TenantDB, document_id: str, viewer: Viewer) -> Statement:
    seen, params = viewer.sql("d", 3)
    return db.statement(
        "SELECT d.id, d.owner_id, d.visibility FROM documents d"
        f" WHERE d.tenant_id = ?1 AND d.id = ?2{seen}",
        (document_id, *params),
    )


async def check_document(
    db: TenantDB, principal: Principal, viewer: Viewer, document_id: str, *, write: bool
) -> None:
    """404 unless the caller may see the document; 403 when they may see but not change it.

    A document id that exists nowhere passes through: the ingest Worker answers 404 itself.
    """
    if write:
        require_role(principal, WRITERS, "changing documents")
    rows = (await db.run(select_visible_document(db, document_id, viewer))).rows
    if not rows:
        exists = (
            await db.execute(
                "SELECT 1 AS x FROM documents WHERE tenant_id = ?1 AND id = ?2", (document_id,)
            )
        ).rows
        if exists:
            raise NotFound(f"document {document_id} not found")
        return
    if write and principal.role != "admin" and rows[0]["owner_id"] != principal.id:
        raise Forbidden("teachers change and delete only the documents they own")
