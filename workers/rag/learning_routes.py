"""The rag Worker's learning routes: personalized and translated sections (rag.learning) and
reading progress (questions asked are counted where answers are made)."""

from __future__ import annotations

from urllib.parse import quote

from kernel.bindings.env import Bindings
from kernel.contracts.learning import (
    PersonalizeRequest,
    Progress,
    ProgressSummary,
    ProgressUpdate,
    TranslateRequest,
)
from kernel.contracts.rag import CACHED_HEADER
from kernel.domain.paging import only_params
from kernel.domain.tenancy import tenant_db
from kernel.runtime.errors import BadRequest
from kernel.runtime.http import Request, Response, json_response
from rag import learning, progress
from rag.replies import spent
from rag.tool_routes import ToolRoutes
from rag.tools.knowledge import ingest_get


class LearningRoutes:
    def __init__(self, bindings: Bindings, tools: ToolRoutes) -> None:
        self.b, self.tools = bindings, tools

    async def personalize(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        reply, cached = await learning.personalize(
            self.tools.toolbox(db), caller, request.model(PersonalizeRequest)
        )
        return _reply(reply.model_dump(), cached, caller.spent)

    async def translate(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        ask = request.model(TranslateRequest)
        rows = (
            await db.execute(
                "SELECT translation_provider FROM tenant_settings WHERE tenant_id = ?1"
            )
        ).rows
        chosen = rows[0]["translation_provider"] if rows else None
        provider = str(chosen or self.b.var("EDGERAG_TRANSLATION_PROVIDER") or "workers-ai")
        reply, cached = await learning.translate(self.tools.toolbox(db), caller, ask, provider)
        return _reply(reply.model_dump(), cached, caller.spent)

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


def _reply(body: dict[str, object], cached: bool, tokens: int) -> Response:
    response = spent(json_response(body), 0 if cached else tokens)
    if cached:  # the gateway gives the rate-limit hit back: a cached section is free
        response.headers[CACHED_HEADER] = "true"
    return response
