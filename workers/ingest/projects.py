"""Projects: a PDF (a score, a handout) uploaded straight to R2, with view/edit grants.

A project is created `pending` with a presigned upload (ingest.direct); confirming it checks
the object, reads the PDF's page count and title, and makes it `ready`. Who may do what is
decided here, by the Worker that owns the tables:

- see it (GET, list): its owner, an admin, anyone granted `view` or `edit`, and the owner's
  teachers — a teacher sees the projects of their students;
- change title/description (PUT): the owner, an admin, an `edit` grantee;
- delete it or manage grants: the owner or an admin only.

A project the caller may not see is a 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from ingest import direct
from ingest.extract import Limits
from ingest.extract.pdf.reader import extract_pdf
from kernel.bindings.env import Bindings
from kernel.bindings.ports import Statement
from kernel.contracts.api import CreateUpload
from kernel.domain.paging import Page
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.runtime.ids import new_id

COLUMNS = (
    "p.id, p.owner_id, p.title, p.description, p.status, p.upload_id, p.page_count,"
    " p.pdf_title, p.created_at, p.updated_at, p.document_id"
)
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def visible(viewer: Viewer, first_param: int) -> tuple[str, list[Any]]:
    """` AND (...)` limiting `p` (projects) to what the viewer may see."""
    if viewer.role == "admin":
        return "", []
    n = first_param
    parts = [
        f"p.owner_id = ?{n}",
        f"EXISTS (SELECT 1 FROM project_access a WHERE a.tenant_id = p.tenant_id"
        f" AND a.project_id = p.id AND a.user_id = ?{n})",
    ]
    params: list[Any] = [viewer.principal_id]
    students = sorted(set(viewer.students)) if viewer.role == "teacher" else []
    if students:
        marks = ", ".join(f"?{n + 1 + i}" for i in range(len(students)))
        parts.append(f"p.owner_id IN ({marks})")
        params += students
    return f" AND ({' OR '.join(parts)})", params


def select_one(db: TenantDB, project_id: str, viewer: Viewer) -> Statement:
    seen, params = visible(viewer, 3)
    return db.statement(
        f"SELECT {COLUMNS}, (SELECT a.permission FROM project_access a WHERE"
        " a.tenant_id = p.tenant_id AND a.project_id = p.id AND a.user_id = ?3) AS granted"
        f" FROM projects p WHERE p.tenant_id = ?1 AND p.id = ?2{seen}",
        (project_id, *params) if params else (project_id, viewer.principal_id),
    )


def select_page(db: TenantDB, viewer: Viewer, page: Page) -> Statement:
    seen, params = visible(viewer, 3)
    after = ""
    values: list[Any] = [viewer.principal_id, *params]
    if page.after is not None:
        values.append(page.after)
        after = f" AND p.id > ?{len(values) + 1}"
    values.append(page.limit + 1)
    return db.statement(
        f"SELECT {COLUMNS}, (SELECT a.permission FROM project_access a WHERE"
        " a.tenant_id = p.tenant_id AND a.project_id = p.id AND a.user_id = ?2) AS granted"
        f" FROM projects p WHERE p.tenant_id = ?1{seen}{after} ORDER BY p.id"
        f" LIMIT ?{len(values) + 1}",
        values,
    )


async def get(db: TenantDB, viewer: Viewer | None, project_id: str) -> dict[str, Any]:
    if viewer is None or not viewer.principal_id:
        raise NotFound(f"project {project_id} not found")
    rows = (await db.run(select_one(db, project_id, viewer))).rows
    if not rows:
        raise NotFound(f"project {project_id} not found")
    return rows[0]


def may_edit(viewer: Viewer, row: dict[str, Any]) -> bool:
    return (
        viewer.role == "admin" or row["owner_id"] == viewer.principal_id or row["granted"] == "edit"
    )


def may_manage(viewer: Viewer, row: dict[str, Any]) -> bool:
    return viewer.role == "admin" or row["owner_id"] == viewer.principal_id


async def create(
    b: Bindings, db: TenantDB, viewer: Viewer, title: str, description: str, pdf: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    ticket = await direct.create(
        b,
        db,
        viewer.principal_id,
        CreateUpload(
            filename=pdf["filename"],
            content_type="application/pdf",
            size_bytes=pdf["size_bytes"],
            sha256=pdf["sha256"],
            purpose="project",
        ),
    )
    project_id = new_id("prj")
    await db.run(
        db.statement(
            "INSERT INTO projects (tenant_id, id, owner_id, title, description, upload_id)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (project_id, viewer.principal_id, title, description, ticket.upload_id),
        )
    )
    return await get(db, viewer, project_id), ticket


async def confirm(b: Bindings, db: TenantDB, viewer: Viewer, project_id: str) -> dict[str, Any]:
    row = await get(db, viewer, project_id)
    if not may_manage(viewer, row):
        raise Forbidden("only the project's owner or an admin confirms its upload")
    if row["status"] == "ready":
        return row
    key = (
        await db.execute(
            "SELECT object_key FROM uploads WHERE tenant_id = ?1 AND id = ?2", (row["upload_id"],)
        )
    ).rows[0]["object_key"]
    blob = await b.need(b.blobs, "R2").get(str(key))
    if blob is None:
        raise Conflict(
            "nothing was uploaded yet: PUT the file to the upload URL first",
            code="upload_missing",
        )
    # Its bytes must be what it claims before the upload counts as confirmed.
    if not blob.data.startswith(b"%PDF-"):
        raise ValidationFailed("the uploaded file is not a PDF", code="not_a_pdf")
    extracted = extract_pdf(blob.data)
    await direct.confirm(b, db, str(row["owner_id"]), str(row["upload_id"]))
    Limits().check_text(len(extracted.text))
    await db.run(
        db.statement(
            f"UPDATE projects SET status = 'ready', page_count = ?3, pdf_title = ?4, updated_at = {NOW}"
            " WHERE tenant_id = ?1 AND id = ?2",
            (project_id, len(extracted.pages) or None, extracted.title),
        )
    )
    return await get(db, viewer, project_id)


async def update(
    db: TenantDB, viewer: Viewer, project_id: str, title: str | None, description: str | None
) -> dict[str, Any]:
    row = await get(db, viewer, project_id)
    if not may_edit(viewer, row):
        raise Forbidden("changing a project needs its owner, an admin or an edit grant")
    await db.run(
        db.statement(
            "UPDATE projects SET title = COALESCE(?3, title), description = COALESCE(?4,"
            f" description), updated_at = {NOW} WHERE tenant_id = ?1 AND id = ?2",
            (project_id, title, description),
        )
    )
    return await get(db, viewer, project_id)


async def delete(b: Bindings, db: TenantDB, viewer: Viewer, project_id: str) -> None:
    row = await get(db, viewer, project_id)
    if not may_manage(viewer, row):
        raise Forbidden("only the project's owner or an admin deletes it")
    uploads = (
        await db.execute(
            "SELECT object_key FROM uploads WHERE tenant_id = ?1 AND id = ?2", (row["upload_id"],)
        )
    ).rows
    await db.batch(
        [
            db.statement(
                "DELETE FROM project_access WHERE tenant_id = ?1 AND project_id = ?2",
                (project_id,),
            ),
            db.statement(
                "DELETE FROM annotations WHERE tenant_id = ?1 AND project_id = ?2", (project_id,)
            ),
            db.statement("DELETE FROM projects WHERE tenant_id = ?1 AND id = ?2", (project_id,)),
            db.statement(
                "DELETE FROM uploads WHERE tenant_id = ?1 AND id = ?2", (row["upload_id"],)
            ),
        ]
    )
    if uploads:
        await b.need(b.blobs, "R2").delete([str(uploads[0]["object_key"])])


async def grant(
    db: TenantDB, viewer: Viewer, project_id: str, user_id: str, permission: str
) -> list[dict[str, Any]]:
    row = await get(db, viewer, project_id)
    if not may_manage(viewer, row):
        raise Forbidden("only the project's owner or an admin manages its access")
    known = (
        await db.execute(
            "SELECT id FROM users WHERE tenant_id = ?1 AND id = ?2 AND disabled_at IS NULL",
            (user_id,),
        )
    ).rows
    if not known:
        raise ValidationFailed(
            "user_id: no such user in the tenant",
            details={"fields": [{"field": "user_id", "message": "no such user"}]},
        )
    await db.run(
        db.statement(
            "INSERT INTO project_access (tenant_id, project_id, user_id, permission, granted_by)"
            " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, project_id, user_id)"
            " DO UPDATE SET permission = excluded.permission, granted_by = excluded.granted_by",
            (project_id, user_id, permission, viewer.principal_id),
        )
    )
    return await grants(db, viewer, project_id)


async def grants(db: TenantDB, viewer: Viewer, project_id: str) -> list[dict[str, Any]]:
    row = await get(db, viewer, project_id)
    if not may_manage(viewer, row):
        raise Forbidden("only the project's owner or an admin sees its access list")
    return (
        await db.execute(
            "SELECT user_id, permission, granted_by, created_at FROM project_access"
            " WHERE tenant_id = ?1 AND project_id = ?2 ORDER BY user_id",
            (project_id,),
        )
    ).rows


async def revoke(db: TenantDB, viewer: Viewer, project_id: str, user_id: str) -> None:
    row = await get(db, viewer, project_id)
    if not may_manage(viewer, row):
        raise Forbidden("only the project's owner or an admin manages its access")
    result = await db.execute(
        "DELETE FROM project_access WHERE tenant_id = ?1 AND project_id = ?2 AND user_id = ?3",
        (project_id, user_id),
    )
    if result.changes != 1:
        raise NotFound(f"user {user_id} has no grant on this project")
