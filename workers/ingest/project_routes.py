"""The ingest Worker's project and annotation routes (ingest.projects and ingest.annotations
decide who may do what)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ingest import annotations as page_notes  # not `annotations`: the __future__ name
from ingest import direct, projects
from ingest.access import WRITERS
from ingest.uploads import Upload
from kernel.bindings.env import Bindings
from kernel.contracts.api import (
    ConfirmProject,
    CreateProject,
    Grant,
    GrantList,
    Project,
    ProjectChange,
    ProjectCreated,
    ProjectList,
)
from kernel.contracts.workspaces import Annotation, AnnotationList, CreateAnnotation
from kernel.domain.paging import page_params
from kernel.domain.tenancy import TenantDB, Viewer, tenant_db
from kernel.runtime.errors import BadRequest, Forbidden, ValidationFailed
from kernel.runtime.http import Request, Response, json_response
from kernel.runtime.ids import new_id

if TYPE_CHECKING:
    from ingest.app import Ingest

_PROJECT_ID = re.compile(r"^prj_[0-9a-f]{24}$")


def _viewer(db: TenantDB) -> Viewer:
    viewer = db.scope.viewer
    if viewer is None or not viewer.principal_id:
        raise BadRequest("projects need an authenticated principal")
    return viewer


def _id(request: Request) -> str:
    return request.id_param("project_id", _PROJECT_ID, "project")


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
    def __init__(self, ingest: Ingest) -> None:
        self.ingest, self.b = ingest, ingest.b

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
        ask = request.optional_model(ConfirmProject)
        if ask.index and viewer.role not in WRITERS:
            raise Forbidden("indexing a project for search needs one of the roles: admin, teacher")
        row = await projects.confirm(self.b, db, viewer, _id(request))
        if ask.index and row["document_id"] is None:
            row = await self._index(request, db, viewer, row, ask.visibility)
        return json_response(public(row, viewer))

    async def _index(
        self, request: Request, db: TenantDB, viewer: Viewer, row: dict[str, Any], visibility: str
    ) -> dict[str, Any]:
        """The project's PDF as a knowledge-base document, through the ingestion pipeline."""
        _, current = await self.ingest.settings_for(db)
        data, content_type, filename = await direct.read_confirmed(
            self.b, db, str(row["owner_id"]), str(row["upload_id"]), current.max_upload_bytes
        )
        upload = Upload(
            data=data,
            content_type=content_type,
            filename=filename,
            title=str(row["title"]),
            visibility=visibility,
            given=frozenset({"title", "visibility"}),
        )
        accepted = await self.ingest.accept_upload(request, db, upload, new_id("d"), True)
        document_id = json.loads(accepted.body)["document_id"]
        await db.execute(
            "UPDATE projects SET document_id = ?3 WHERE tenant_id = ?1 AND id = ?2",
            (row["id"], document_id),
        )
        return await projects.get(db, viewer, str(row["id"]))

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


_ANNOTATION_ID = re.compile(r"^ann_[0-9a-f]{24}$")


def _annotation_id(request: Request) -> str:
    return request.id_param("annotation_id", _ANNOTATION_ID, "annotation")


class AnnotationRoutes:
    """ingest.annotations decides who annotates, sees and changes what."""

    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def create(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        row = await page_notes.create(db, viewer, request.model(CreateAnnotation))
        return json_response(_annotation(row, viewer), 201)

    async def list(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        page = page_params(request.query, cursor=_ANNOTATION_ID, allowed=("project_id", "page"))
        project_id = request.query.get("project_id", "")
        if not _PROJECT_ID.match(project_id):
            raise ValidationFailed.field("project_id", "required: the project's id (prj_…)")
        page_no = _page_number(request.query.get("page"))
        await projects.get(db, viewer, project_id)  # 404 unless the viewer may see it
        rows = (await db.run(page_notes.select_page(db, viewer, project_id, page_no, page))).rows
        shown = [_annotation(r, viewer) for r in rows[: page.limit]]
        cursor = shown[-1]["id"] if len(rows) > page.limit else None
        return json_response(
            AnnotationList.model_validate(
                {"annotations": shown, "next_cursor": cursor}
            ).model_dump()
        )

    async def get(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        return json_response(
            _annotation(await page_notes.get(db, viewer, _annotation_id(request)), viewer)
        )

    async def update(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        change = request.json()
        if not isinstance(change, dict) or not change:
            raise ValidationFailed.field("body", "an object of the fields to change")
        row = await page_notes.update(db, viewer, _annotation_id(request), change)
        return json_response(_annotation(row, viewer))

    async def delete(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        annotation_id = _annotation_id(request)
        await page_notes.delete(db, _viewer(db), annotation_id)
        return json_response({"annotation_id": annotation_id, "deleted": True})


def _page_number(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ValidationFailed.field("page", f"a page number from 1, got {raw[:20]!r}")
    return int(raw)


def _annotation(row: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    return Annotation.model_validate(page_notes.public(row, viewer)).model_dump()
