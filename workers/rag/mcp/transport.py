"""MCP's Streamable HTTP transport on the rag Worker: `POST /mcp` takes one JSON-RPC message
and answers one `application/json` reply (or 202 with no body for a notification or a
response); `DELETE /mcp` ends a session. There is no SSE stream: no method here sends
progress or server requests, so the spec's single-JSON-reply option is all a client needs (GET
is the gateway's 405).

Order of checks: the message parses (400, -32700) and is one JSON-RPC message (400, -32600);
`initialize` opens a session and names it in `Mcp-Session-Id`; any other message needs a
supported `MCP-Protocol-Version` (or none: the session's) and a live session of this caller
(400 without one, 404 for one ended, expired or someone else's). Who the caller is and what they
may see come from the gateway's identity headers, as for every route of this Worker.
"""

from __future__ import annotations

from typing import Any

from kernel.bindings.env import Bindings
from kernel.contracts.mcp import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    LATEST,
    MCP_TOOLS,
    METHOD_NOT_FOUND,
    PROTOCOL_VERSIONS,
    SESSION_HEADER,
    VERSION_HEADER,
    CallToolParams,
    Implementation,
    InitializeParams,
    InitializeResult,
    PageParams,
    ReadResourceParams,
    wire,
)
from kernel.domain.tenancy import TenantDB, tenant_db
from kernel.runtime.http import Request, Response, json_response
from rag.mcp import jsonrpc, resources, sessions, tools
from rag.mcp.jsonrpc import Message, RpcError
from rag.replies import spent
from rag.tool_routes import ToolRoutes
from rag.tools.dispatch import Caller, Toolbox

SERVER = Implementation(name="edgerag", title="edgerag knowledge base", version="1")
INSTRUCTIONS = (
    "A school's knowledge base, scoped to your tenant and role. `search` finds passages;"
    " `answer` writes an answer with verified citations (it spends model tokens); read a whole"
    " document as the resource edgerag://documents/{id} (ids are in search results)."
)


class McpRoutes:
    def __init__(self, bindings: Bindings, routes: ToolRoutes, answered: tools.Answered) -> None:
        self.b, self.routes = bindings, routes
        self.impls = tools.impls(answered)

    async def post(self, request: Request) -> Response:
        try:
            message = jsonrpc.parse(request.body)
            db = tenant_db(self.b, request)
            if message.kind == "request" and message.method == "initialize":
                return await self._initialize(request, db, message)
            session = await self._session(request, db)
        except RpcError as exc:
            return json_response(exc.response(None, request.request_id), exc.status)
        if message.kind != "request":
            return Response(status=202)  # notifications (initialized, cancelled) and responses
        assert message.id is not None
        caller = self.routes.caller(request, session_id=session.id)
        try:
            result = await self._dispatch(db, caller, message)
        except RpcError as exc:
            return json_response(exc.response(message.id, request.request_id), exc.status)
        return spent(json_response(jsonrpc.result(message.id, result)), caller.spent)

    async def delete(self, request: Request) -> Response:
        db = tenant_db(self.b, request)
        session_id = request.header(SESSION_HEADER)
        try:
            if not session_id:
                raise RpcError(INVALID_REQUEST, "Bad Request: send the Mcp-Session-Id", status=400)
            if not await sessions.end(db, self._principal(db), session_id):
                raise RpcError(INVALID_REQUEST, "Not Found: no such session", status=404)
        except RpcError as exc:
            return json_response(exc.response(None, request.request_id), exc.status)
        return Response(status=204)

    # --- the lifecycle ------------------------------------------------------------------------
    def _principal(self, db: TenantDB) -> str:
        viewer = db.scope.viewer
        if viewer is None or not viewer.principal_id:
            raise RpcError(INVALID_REQUEST, "MCP needs an authenticated principal", status=400)
        return viewer.principal_id

    async def _initialize(self, request: Request, db: TenantDB, message: Message) -> Response:
        assert message.id is not None
        try:
            asked: InitializeParams = jsonrpc.params(InitializeParams, message)
        except RpcError as exc:
            return json_response(exc.response(message.id, request.request_id))
        # The client's version when we speak it, else our latest (it may then disconnect).
        version = asked.protocolVersion if asked.protocolVersion in PROTOCOL_VERSIONS else LATEST
        session = await sessions.start(db, self._principal(db), version)
        result = InitializeResult(
            protocolVersion=version,
            capabilities={"tools": {}, "resources": {}},
            serverInfo=SERVER,
            instructions=INSTRUCTIONS,
        )
        response = json_response(jsonrpc.result(message.id, wire(result)))
        response.headers[SESSION_HEADER] = session.id
        return response

    async def _session(self, request: Request, db: TenantDB) -> sessions.Session:
        sent = request.header(VERSION_HEADER)
        if sent is not None and sent not in PROTOCOL_VERSIONS:
            raise RpcError(
                INVALID_REQUEST,
                f"Bad Request: unsupported MCP-Protocol-Version {sent[:40]!r}; this server"
                f" speaks {', '.join(PROTOCOL_VERSIONS)} (send `initialize` to negotiate)",
                {"supported": list(PROTOCOL_VERSIONS), "requested": sent[:40]},
                status=400,
            )
        session_id = request.header(SESSION_HEADER)
        if not session_id:
            raise RpcError(
                INVALID_REQUEST,
                "Bad Request: send `initialize` first, then its Mcp-Session-Id",
                status=400,
            )
        session = await sessions.find(db, self._principal(db), session_id)
        if session is None:
            raise RpcError(
                INVALID_REQUEST,
                "Not Found: the session ended or never existed; initialize a new one",
                status=404,
            )
        if sent is not None and sent != session.protocol_version:
            raise RpcError(
                INVALID_REQUEST,
                f"Bad Request: MCP-Protocol-Version {sent} is not the version this session"
                f" negotiated ({session.protocol_version})",
                status=400,
            )
        return session

    # --- the methods --------------------------------------------------------------------------
    def _toolbox(self, db: TenantDB) -> Toolbox:
        return self.routes.toolbox(db, self.impls, MCP_TOOLS)

    async def _dispatch(self, db: TenantDB, caller: Caller, message: Message) -> dict[str, Any]:
        box = self._toolbox(db)
        method = message.method
        if method == "ping":
            return {}
        if method == "tools/list":
            if jsonrpc.params(PageParams, message).cursor is not None:
                raise RpcError(INVALID_PARAMS, "Invalid params: the tool list has one page")
            return wire(tools.list_tools(box, caller))
        if method == "tools/call":
            call: CallToolParams = jsonrpc.params(CallToolParams, message)
            return wire(await tools.call_tool(box, caller, call.name, call.arguments))
        if method == "resources/list":
            cursor = jsonrpc.params(PageParams, message).cursor
            return wire(await resources.list_documents(box, caller, cursor))
        if method == "resources/templates/list":
            jsonrpc.params(PageParams, message)
            return wire(resources.TEMPLATES)
        if method == "resources/read":
            uri = jsonrpc.params(ReadResourceParams, message).uri
            return wire(await resources.read(box, caller, uri))
        raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method[:100]}")
