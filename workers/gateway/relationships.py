"""Teacher → student relationships: who sees a teacher's `students`-visibility documents.

Teachers add and remove their own students; admins manage anyone's (naming `teacher_id`).
Listing shows a teacher their students, a student their teachers, an admin everything.
"""

from __future__ import annotations

from typing import Any

from gateway.auth import Principal
from gateway.models import CreateRelationship
from kernel.bindings.ports import ConstraintViolation, Statement
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.runtime.ids import new_id

COLUMNS = "id, teacher_id, student_id, created_at"


def insert(db: TenantDB, rel_id: str, teacher_id: str, student_id: str) -> Statement:
    return db.statement(
        "INSERT INTO relationships (tenant_id, id, teacher_id, student_id) VALUES (?1, ?2, ?3, ?4)",
        (rel_id, teacher_id, student_id),
    )


def select_for(db: TenantDB, principal: Principal) -> Statement:
    if principal.role == "admin":
        return db.statement(
            f"SELECT {COLUMNS} FROM relationships WHERE tenant_id = ?1 ORDER BY created_at, id"
        )
    column = "teacher_id" if principal.role == "teacher" else "student_id"
    return db.statement(
        f"SELECT {COLUMNS} FROM relationships WHERE tenant_id = ?1 AND {column} = ?2"
        " ORDER BY created_at, id",
        (principal.id,),
    )


def select_one(db: TenantDB, rel_id: str) -> Statement:
    return db.statement(
        f"SELECT {COLUMNS} FROM relationships WHERE tenant_id = ?1 AND id = ?2", (rel_id,)
    )


def delete_one(db: TenantDB, rel_id: str) -> Statement:
    return db.statement("DELETE FROM relationships WHERE tenant_id = ?1 AND id = ?2", (rel_id,))


def teachers_of(db: TenantDB, student_id: str) -> Statement:
    return db.statement(
        "SELECT teacher_id FROM relationships WHERE tenant_id = ?1 AND student_id = ?2"
        " ORDER BY teacher_id LIMIT 400",
        (student_id,),
    )


def students_of(db: TenantDB, teacher_id: str) -> Statement:
    return db.statement(
        "SELECT student_id FROM relationships WHERE tenant_id = ?1 AND teacher_id = ?2"
        " ORDER BY student_id LIMIT 400",
        (teacher_id,),
    )


def user_role(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "SELECT role FROM users WHERE tenant_id = ?1 AND id = ?2 AND disabled_at IS NULL",
        (user_id,),
    )


async def _role_of(db: TenantDB, user_id: str) -> str | None:
    rows = (await db.run(user_role(db, user_id))).rows
    return str(rows[0]["role"]) if rows else None


async def create(db: TenantDB, principal: Principal, body: CreateRelationship) -> dict[str, Any]:
    if principal.role == "teacher":
        if body.teacher_id not in (None, principal.id):
            raise Forbidden("teachers add students to themselves only")
        teacher_id = principal.id
    elif principal.role == "admin":
        if body.teacher_id is None:
            raise ValidationFailed("teacher_id: required when an admin adds a relationship")
        teacher_id = body.teacher_id
    else:
        raise Forbidden("only teachers and admins manage relationships")
    if await _role_of(db, teacher_id) != "teacher":
        raise ValidationFailed("teacher_id: no teacher with this id in the tenant")
    if await _role_of(db, body.student_id) != "student":
        raise ValidationFailed("student_id: no student with this id in the tenant")
    rel_id = new_id("rel")
    try:
        await db.run(insert(db, rel_id, teacher_id, body.student_id))
    except ConstraintViolation as exc:
        raise Conflict("this student is already related to this teacher") from exc
    return {"id": rel_id, "teacher_id": teacher_id, "student_id": body.student_id}


async def delete(db: TenantDB, principal: Principal, rel_id: str) -> dict[str, Any]:
    rows = (await db.run(select_one(db, rel_id))).rows
    visible = rows and (principal.role == "admin" or rows[0]["teacher_id"] == principal.id)
    if not visible:
        raise NotFound(f"relationship {rel_id} not found")
    await db.run(delete_one(db, rel_id))
    return {"id": rel_id, "deleted": True}
