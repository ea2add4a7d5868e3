"""Roles, checked by the gateway's pipeline for each route row before anything is forwarded.

Roles: `admin` (everything in the tenant: users, API keys, settings, CORS, every document),
`teacher` (uploads documents; changes and deletes the ones they own; manages their students),
`student` (reads and asks: search, answers, chat — never uploads, changes or deletes). The
operator sits above tenants (creates them, sets token budgets) and has no tenant data access.

Which documents a caller may read or change is decided by the Worker that owns them (ingest),
from the identity the gateway stamps: principal, role and — via `viewer_for` — a student's
teachers.
"""

from __future__ import annotations

from gateway.auth import Principal
from gateway.relationships import students_of, teachers_of
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Forbidden

WRITERS = frozenset({"admin", "teacher"})


def require_role(principal: Principal, roles: frozenset[str] | set[str], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"{what} needs one of the roles: {', '.join(sorted(roles))}")


async def viewer_for(db: TenantDB, principal: Principal) -> Viewer:
    teachers: tuple[str, ...] = ()
    students: tuple[str, ...] = ()
    if principal.role == "student":
        rows = (await db.run(teachers_of(db, principal.id))).rows
        teachers = tuple(str(r["teacher_id"]) for r in rows)
    elif principal.role == "teacher":
        rows = (await db.run(students_of(db, principal.id))).rows
        students = tuple(str(r["student_id"]) for r in rows)
    return Viewer(
        principal_id=principal.id, role=principal.role, teachers=teachers, students=students
    )
