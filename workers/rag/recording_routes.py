"""The rag Worker's recording routes: feedback from an analysis and the knowledge base
(rag.feedback); the ingest Worker authorizes every read of the recording."""

from __future__ import annotations

import re

from kernel.bindings.env import Bindings
from kernel.contracts.rag import CACHED_HEADER
from kernel.contracts.workspaces import FeedbackList, FeedbackRequest
from kernel.domain.tenancy import tenant_db
from kernel.runtime.http import Request, Response, json_response
from rag import feedback
from rag.replies import spent
from rag.tool_routes import ToolRoutes

_RECORDING_ID = re.compile(r"^rec_[0-9a-f]{24}$")


def _id(request: Request) -> str:
    return request.id_param("recording_id", _RECORDING_ID, "recording")


class RecordingRoutes:
    def __init__(self, bindings: Bindings, tools: ToolRoutes) -> None:
        self.b, self.tools = bindings, tools

    async def feedback(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        ask = request.optional_model(FeedbackRequest)
        reply, cached = await feedback.generate(self.tools.toolbox(db), caller, _id(request), ask)
        response = spent(json_response(reply.model_dump(), 200 if cached else 201), caller.spent)
        if cached:  # the gateway gives the rate-limit hit back: stored feedback is free
            response.headers[CACHED_HEADER] = "true"
        return response

    async def feedback_history(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        caller = self.tools.caller(request)
        found = await feedback.history(self.tools.toolbox(db), caller, _id(request))
        return json_response(
            FeedbackList.model_validate({"feedback": [f.model_dump() for f in found]}).model_dump()
        )
