"""Each user's learning context — level, goals, constraints, interests, language, notes.

A user reads and replaces their own; a teacher reads their students' (the gateway stamps a
teacher's students, kernel.domain.tenancy.Viewer.students); nobody else reads anyone's — not
admins either: it is the learner's own account of themselves. Someone else's context answers
404, like one that does not exist, so user ids are not probeable.
"""

from __future__ import annotations

import json
from typing import Any

from kernel.bindings.ports import Statement
from kernel.contracts.tools import UserContext, UserContextBody
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import BadRequest, NotFound, PayloadTooLarge

MAX_CONTEXT_BYTES = 8 * 1024


def select(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "SELECT body, updated_at FROM user_context WHERE tenant_id = ?1 AND user_id = ?2",
        (user_id,),
    )


def upsert(db: TenantDB, user_id: str, body: str) -> Statement:
    return db.statement(
        "INSERT INTO user_context (tenant_id, user_id, body) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (tenant_id, user_id) DO UPDATE SET body = excluded.body,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        (user_id, body),
    )


def may_read(viewer: Viewer, user_id: str) -> bool:
    return user_id == viewer.principal_id or (
        viewer.role == "teacher" and user_id in viewer.students
    )


def readable_subject(viewer: Viewer | None, user_id: str | None, what: str) -> str:
    """Whose `what` (context, progress) is asked for — the viewer's own by default — if the
    viewer may read it: themselves, or a teacher their student. Anyone else's: 404."""
    if viewer is None or not viewer.principal_id:
        raise BadRequest(f"{what} needs an authenticated principal")
    subject = user_id or viewer.principal_id
    if not may_read(viewer, subject):
        raise NotFound(f"no {what} for user {subject} that you may read")
    return subject


async def read(db: TenantDB, viewer: Viewer | None, user_id: str | None = None) -> UserContext:
    """The context of `user_id` (default: the viewer), if the viewer may read it."""
    subject = readable_subject(viewer, user_id, "context")
    rows = (await db.run(select(db, subject))).rows
    if not rows:
        return UserContext(user_id=subject)
    stored: dict[str, Any] = json.loads(str(rows[0]["body"]))
    return UserContext(**stored, user_id=subject, updated_at=str(rows[0]["updated_at"]))


async def write(db: TenantDB, viewer: Viewer | None, body: UserContextBody) -> UserContext:
    if viewer is None or not viewer.principal_id:
        raise BadRequest("user context needs an authenticated principal")
    encoded = json.dumps(body.model_dump(exclude_none=True), ensure_ascii=False)
    if len(encoded.encode()) > MAX_CONTEXT_BYTES:
        raise PayloadTooLarge(f"a user context is at most {MAX_CONTEXT_BYTES} bytes of JSON")
    await db.run(upsert(db, viewer.principal_id, encoded))
    return await read(db, viewer)


async def level_of(db: TenantDB, viewer: Viewer | None) -> str | None:
    """The viewer's own level, for the register of answers (None: not set, or no user)."""
    if viewer is None or not viewer.principal_id:
        return None
    rows = (await db.run(select(db, viewer.principal_id))).rows
    return json.loads(str(rows[0]["body"])).get("level") if rows else None
