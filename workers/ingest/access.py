"""Who may read or change one document — decided here, by the Worker that owns the table.

The gateway authenticates and stamps the caller's identity (principal, role and, for
students, their teachers: `kernel.domain.tenancy.scope_from_request`); every single-document
route of this Worker then asks `authorize` before it reads or writes. Reading follows the
document's visibility exactly as search and lists do (`Viewer.sql`); a document the caller may
not see answers 404 like an id that does not exist, so ids are not probeable. Writing needs a
writer role and, for teachers, ownership (403). Deleted documents are still checked (restore).
"""

from __future__ import annotations

from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Forbidden, NotFound

WRITERS = frozenset({"admin", "teacher"})


def select_visible(db: TenantDB, document_id: str, viewer: Viewer) -> Statement:
    seen, params = viewer.sql("d", 3)
    return db.statement(
        "SELECT d.id, d.owner_id, d.visibility FROM documents d"
        f" WHERE d.tenant_id = ?1 AND d.id = ?2{seen}",
        (document_id, *params),
    )


async def authorize(db: TenantDB, viewer: Viewer | None, document_id: str, *, write: bool) -> None:
    """404 unless `viewer` may see the document; 403 when they may see but not change it."""
    if viewer is None:  # no identity stamped: nobody to show a document to
        raise NotFound(f"document {document_id} not found")
    if write and viewer.role not in WRITERS:
        raise Forbidden(f"changing documents needs one of the roles: {', '.join(sorted(WRITERS))}")
    rows = (await db.run(select_visible(db, document_id, viewer))).rows
    if not rows:
        raise NotFound(f"document {document_id} not found")
    if write and viewer.role != "admin" and rows[0]["owner_id"] != viewer.principal_id:
        raise Forbidden("teachers change and delete only the documents they own")


def own_or_students(viewer: Viewer, column: str, first_param: int) -> tuple[str, list[str]]:
    """` AND <column> IN (...)` for work that is someone's own (annotations, recordings): the
    viewer's, and a teacher's students' too; "" for an admin, who sees the tenant's."""
    if viewer.role == "admin":
        return "", []
    people = [viewer.principal_id]
    if viewer.role == "teacher":
        people += sorted(set(viewer.students) - {viewer.principal_id})
    marks = ", ".join(f"?{first_param + i}" for i in range(len(people)))
    return f" AND {column} IN ({marks})", people
