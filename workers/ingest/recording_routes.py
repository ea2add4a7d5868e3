"""The ingest Worker's recording routes (ingest.recordings decides who may do what)."""

from __future__ import annotations

import re
from typing import Any

from ingest import recordings, store
from ingest.settings import effective
from kernel.bindings.env import Bindings
from kernel.contracts.workspaces import (
    Analysis,
    AnalysisList,
    CreateRecording,
    Recording,
    RecordingCreated,
    RecordingList,
)
from kernel.domain.paging import page_params
from kernel.domain.tenancy import TenantDB, Viewer, tenant_db
from kernel.runtime.errors import BadRequest, ValidationFailed
from kernel.runtime.http import Request, Response, json_response

_RECORDING_ID = re.compile(r"^rec_[0-9a-f]{24}$")
_ANALYSIS_ID = re.compile(r"^ana_[0-9a-f]{24}$")
_FILTERS = {
    "owner_id": re.compile(r"^[A-Za-z0-9_-]{1,64}$"),
    "status": re.compile(r"^(pending|ready|rejected)$"),
    "format": re.compile(r"^(wav|flac|mp3|ogg|m4a)$"),
}


def _viewer(db: TenantDB) -> Viewer:
    viewer = db.scope.viewer
    if viewer is None or not viewer.principal_id:
        raise BadRequest("recordings need an authenticated principal")
    return viewer


def _id(request: Request) -> str:
    return request.id_param("recording_id", _RECORDING_ID, "recording")


async def _public(db: TenantDB, row: dict[str, Any]) -> dict[str, Any]:
    latest = (
        await db.execute(
            "SELECT id, status, created_at FROM recording_analyses WHERE tenant_id = ?1"
            " AND recording_id = ?2 ORDER BY created_at DESC, id DESC LIMIT 1",
            (row["id"],),
        )
    ).rows
    return Recording.model_validate(
        {**row, "latest_analysis": latest[0] if latest else None}
    ).model_dump()


class RecordingRoutes:
    def __init__(self, bindings: Bindings) -> None:
        self.b = bindings

    async def create(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        row, ticket = await recordings.create(
            self.b, db, _viewer(db), request.model(CreateRecording)
        )
        created = RecordingCreated.model_validate(
            {"recording": await _public(db, row), "upload": ticket.model_dump()}
        )
        return json_response(created.model_dump(), 201)

    async def confirm(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        row = await recordings.confirm(self.b, db, _viewer(db), _id(request))
        return json_response(await _public(db, row))

    async def list(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = _viewer(db)
        page = page_params(request.query, cursor=_RECORDING_ID, allowed=tuple(_FILTERS))
        filters = {k: v for k, v in request.query.items() if k in _FILTERS}
        for name, value in filters.items():
            if not _FILTERS[name].match(value):
                raise ValidationFailed.field(name, f"not a valid {name}: {value[:40]!r}")
        rows = (await db.run(recordings.select_page(db, viewer, page, filters))).rows
        shown = [await _public(db, r) for r in rows[: page.limit]]
        cursor = shown[-1]["id"] if len(rows) > page.limit else None
        return json_response(
            RecordingList.model_validate({"recordings": shown, "next_cursor": cursor}).model_dump()
        )

    async def get(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        return json_response(await _public(db, await recordings.get(db, _viewer(db), _id(request))))

    async def delete(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        recording_id = _id(request)
        await recordings.delete(self.b, db, _viewer(db), recording_id)
        return json_response({"recording_id": recording_id, "deleted": True})

    async def analyze(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        rows = (await db.run(store.select_settings(db))).rows
        settings = effective(self.b, dict(rows[0]) if rows else {})
        done = await recordings.analyze(
            self.b, db, _viewer(db), settings, _id(request), request.request_id
        )
        return json_response(Analysis.model_validate(done).model_dump(), 201)

    async def analyses(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        recording_id = _id(request)
        await recordings.get(db, _viewer(db), recording_id)  # authorizes
        found = await recordings.analyses(db, recording_id)
        return json_response(AnalysisList.model_validate({"analyses": found}).model_dump())

    async def analysis(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        recording_id = _id(request)
        await recordings.get(db, _viewer(db), recording_id)  # authorizes
        analysis_id = request.id_param("analysis_id", _ANALYSIS_ID, "analysis")
        found = await recordings.analysis(db, recording_id, analysis_id)
        return json_response(Analysis.model_validate(found).model_dump())
