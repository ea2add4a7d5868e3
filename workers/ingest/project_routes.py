"""The ingest Worker's project routes (ingest.projects decides who may do what)."""

from __future__ import annotations

import re
from typing import Any

from ingest import projects
from kernel.bindings.env import Bindings
from kernel.contracts.api import (
    CreateProject,
    Grant,
    GrantList,
    Project,
    ProjectChange,
    ProjectCreated,
    ProjectList,
)
from kernel.domain.paging import page_params
from kernel.domain.tenancy import TenantDB, Viewer, tenant_db
from kernel.runtime.errors import BadRequest, NotFound
from kernel.runtime.http import Request, Response, json_response

_PROJECT_ID = re.compile(r"^prj_[0-9a-f]{24}$")


def _viewer(db: TenantDB) -> Viewer:
    viewer = db.scope.viewer
    if viewer is None or not viewer.principal_id:
        raise BadRequest("projects need an authenticated principal")
    return viewer


def _id(request: Request) -> str:
    project_id = request.params["project_id"]
    if not _PROJECT_ID.match(project_id):
        raise NotFound(f"project {project_id} not found")
    return project_id


def public(row: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    if row["owner_id"] == viewer.principal_id:
        access = "owner"
    elif viewer.role == "admin":
        access = "admin"
    elif row.get("granted"):
        access = str(row["granted"])
    else:
        access = "teacher"  # visible only as a student's teacher
    return Project.model_validate({**row, "access": access}).model_dump()


class ProjectRoutes:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def create(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        ask = request.model(CreateProject)
        row, ticket = await projects.create(
            self.b, db, viewer, ask.title, ask.description, ask.model_dump()
        )
        created = ProjectCreated.model_validate({"project": public(row, viewer), "upload": ticket})
        return json_response(created.model_dump(), 201)

    async def confirm(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        return json_response(
            public(await projects.confirm(self.b, db, viewer, _id(request)), viewer)
        )

    async def list(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        page = page_params(request.query, cursor=_PROJECT_ID)
        rows = (await db.run(projects.select_page(db, viewer, page))).rows
        shown = [public(r, viewer) for r in rows[: page.limit]]
        cursor = shown[-1]["id"] if len(rows) > page.limit else None
        return json_response(
            ProjectList.model_validate({"projects": shown, "next_cursor": cursor}).model_dump()
        )

    async def get(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        return json_response(public(await projects.get(db, viewer, _id(request)), viewer))

    async def update(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        change = request.model(ProjectChange)
        row = await projects.update(db, viewer, _id(request), change.title, change.description)
        return json_response(public(row, viewer))

    async def delete(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        project_id = _id(request)
        await projects.delete(self.b, db, _viewer(db), project_id)
        return json_response({"project_id": project_id, "deleted": True})

    async def grant(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        ask = request.model(Grant)
        rows = await projects.grant(db, _viewer(db), _id(request), ask.user_id, ask.permission)
        return json_response(GrantList.model_validate({"grants": rows}).model_dump(), 201)

    async def grants(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        rows = await projects.grants(db, _viewer(db), _id(request))
        return json_response(GrantList.model_validate({"grants": rows}).model_dump())

    async def revoke(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        await projects.revoke(db, _viewer(db), _id(request), request.params["user_id"])
        return json_response({"user_id": request.params["user_id"], "revoked": True})
