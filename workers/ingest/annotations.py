"""Page annotations: highlights, notes and drawings on a project's pages, each in its author's copy.

Who may do what (decided here, by the Worker that owns the tables):

- annotate: anyone who can see the project (ingest.projects: owner, admin, grantee, the
  owner's teachers), on a page the PDF has;
- see: your own annotations; a teacher also sees their students'; an admin everyone's — each
  only on projects the viewer can see;
- change or delete: the author only (an admin included: an annotation is someone's own work).

An annotation the caller may not see is a 404, like one that does not exist.
"""

from __future__ import annotations

import json
from typing import Any

from ingest import projects
from ingest.access import own_or_students
from kernel.bindings.ports import Statement
from kernel.contracts.workspaces import SHAPES, CreateAnnotation
from kernel.domain.paging import Page
from kernel.domain.tenancy import TenantDB, Viewer
from kernel.runtime.errors import Conflict, Forbidden, NotFound, ValidationFailed
from kernel.runtime.http import validate
from kernel.runtime.ids import new_id

COLUMNS = "n.id, n.project_id, n.page, n.author_id, n.kind, n.body, n.created_at, n.updated_at"
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def authors(viewer: Viewer, first_param: int) -> tuple[str, list[str]]:
    """Whose annotations the viewer sees."""
    return own_or_students(viewer, "n.author_id", first_param)


def select_page(
    db: TenantDB, viewer: Viewer, project_id: str, page_no: int | None, page: Page
) -> Statement:
    values: list[Any] = [project_id]
    where = ""
    if page_no is not None:
        values.append(page_no)
        where += f" AND n.page = ?{len(values) + 1}"
    seen, people = authors(viewer, len(values) + 2)
    values += people
    if page.after is not None:
        values.append(page.after)
        where += f" AND n.id > ?{len(values) + 1}"
    values.append(page.limit + 1)
    return db.statement(
        f"SELECT {COLUMNS} FROM annotations n WHERE n.tenant_id = ?1 AND n.project_id = ?2"
        f"{where}{seen} ORDER BY n.id LIMIT ?{len(values) + 1}",
        values,
    )


def public(row: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    return {
        **{k: row[k] for k in ("id", "project_id", "page", "author_id", "kind")},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "mine": row["author_id"] == viewer.principal_id,
        "shape": json.loads(str(row["body"])),
    }


async def _project(db: TenantDB, viewer: Viewer, project_id: str) -> dict[str, Any]:
    row = await projects.get(db, viewer, project_id)  # 404 unless the viewer may see it
    if row["status"] != "ready":
        raise Conflict(
            "the project's PDF is not confirmed yet: confirm it before annotating",
            code="project_not_ready",
        )
    return row


def _check_page(project: dict[str, Any], page: int) -> None:
    pages = project.get("page_count")
    if pages is not None and page > int(pages):
        raise ValidationFailed.field("page", f"the PDF has {pages} page(s), not {page}")


async def create(db: TenantDB, viewer: Viewer, ask: CreateAnnotation) -> dict[str, Any]:
    project = await _project(db, viewer, ask.project_id)
    _check_page(project, ask.page)
    annotation_id = new_id("ann")
    await db.run(
        db.statement(
            "INSERT INTO annotations (tenant_id, id, project_id, page, author_id, kind, body)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (
                annotation_id,
                ask.project_id,
                ask.page,
                viewer.principal_id,
                ask.shape.kind,
                ask.shape.model_dump_json(),
            ),
        )
    )
    return await get(db, viewer, annotation_id)


async def get(db: TenantDB, viewer: Viewer, annotation_id: str) -> dict[str, Any]:
    seen, people = authors(viewer, 3)
    rows = (
        await db.execute(
            f"SELECT {COLUMNS} FROM annotations n WHERE n.tenant_id = ?1 AND n.id = ?2{seen}",
            (annotation_id, *people),
        )
    ).rows
    if not rows:
        raise NotFound(f"annotation {annotation_id} not found")
    await projects.get(db, viewer, str(rows[0]["project_id"]))  # still visible to the viewer
    return rows[0]


async def _authored(db: TenantDB, viewer: Viewer, annotation_id: str) -> dict[str, Any]:
    row = await get(db, viewer, annotation_id)
    if row["author_id"] != viewer.principal_id:
        raise Forbidden("only its author changes or deletes an annotation")
    return row


async def update(
    db: TenantDB, viewer: Viewer, annotation_id: str, change: dict[str, Any]
) -> dict[str, Any]:
    """`change` holds the kind's fields to replace (page too); the result is validated whole."""
    row = await _authored(db, viewer, annotation_id)
    if "kind" in change and change["kind"] != row["kind"]:
        raise ValidationFailed.field("kind", "an annotation keeps its kind; delete and create")
    page = change.pop("page", row["page"])
    change.pop("kind", None)
    if "project_id" in change:
        raise ValidationFailed.field("project_id", "an annotation stays on its project")
    merged = {**json.loads(str(row["body"])), **change, "kind": row["kind"]}
    shape = validate(SHAPES[str(row["kind"])], merged)
    checked = validate(
        CreateAnnotation,
        {"project_id": row["project_id"], "page": page, "shape": shape.model_dump()},
    )
    _check_page(await _project(db, viewer, str(row["project_id"])), checked.page)
    await db.run(
        db.statement(
            f"UPDATE annotations SET page = ?3, body = ?4, updated_at = {NOW}"
            " WHERE tenant_id = ?1 AND id = ?2",
            (annotation_id, checked.page, checked.shape.model_dump_json()),
        )
    )
    return await get(db, viewer, annotation_id)


async def delete(db: TenantDB, viewer: Viewer, annotation_id: str) -> None:
    await _authored(db, viewer, annotation_id)
    await db.execute("DELETE FROM annotations WHERE tenant_id = ?1 AND id = ?2", (annotation_id,))
