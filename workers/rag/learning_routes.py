"""The rag Worker's learning routes: reading progress (and, counted where answers are made,
questions asked)."""

from __future__ import annotations

from urllib.parse import quote

from kernel.bindings.env import Bindings
from kernel.contracts.learning import Progress, ProgressSummary, ProgressUpdate
from kernel.domain.paging import only_params
from kernel.domain.tenancy import tenant_db
from kernel.runtime.errors import BadRequest
from kernel.runtime.http import Request, Response, json_response
from rag import progress
from rag.tool_routes import ToolRoutes
from rag.tools.knowledge import ingest_get


class LearningRoutes:
    def __init__(self, bindings: Bindings, tools: ToolRoutes) -> None:
        self.b, self.tools = bindings, tools

    async def get_my_progress(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        return json_response(
            Progress.model_validate(await progress.read(db, db.scope.viewer)).model_dump()
        )

    async def post_my_progress(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        viewer = db.scope.viewer
        if viewer is None or not viewer.principal_id:
            raise BadRequest("progress needs an authenticated principal")
        update = request.model(ProgressUpdate)
        # The document (and section) must be one the reader can see: the ingest Worker decides.
        box = self.tools.toolbox(db)
        caller = self.tools.caller(request)
        path = f"/documents/{update.document_id}"
        if update.section:
            found = await ingest_get(
                box, caller, f"{path}/sections?section={quote(update.section, safe='')}&max_chars=1"
            )
            section = " > ".join(found["section"]["path"])
        else:
            await ingest_get(box, caller, path)
            section = ""
        await db.run(
            progress.record(db, viewer.principal_id, update.document_id, section, update.completed)
        )
        return json_response(Progress.model_validate(await progress.read(db, viewer)).model_dump())

    async def get_user_progress(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        user_id = request.params["user_id"]
        found = await progress.read(db, db.scope.viewer, user_id)
        return json_response(Progress.model_validate(found).model_dump())

    async def get_summary(self, request: Request) -> Response:
        only_params(request.query)
        db = tenant_db(self.b, request)
        found = await progress.summary(db, db.scope.viewer)
        return json_response(ProgressSummary.model_validate(found).model_dump())
