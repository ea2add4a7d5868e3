"""Identity routes the gateway answers itself: users and sessions, API keys, relationships and
the caller's rate-limit status. Roles are checked by the pipeline from the route table; what
is left here is the rule each route adds (e.g. admins don't demote themselves)."""

from __future__ import annotations

from typing import Any

from gateway import apikeys, budget, ratelimit, relationships
from gateway.context import JSON_MAX_BYTES, Gateway, caller, client_ip, principal
from gateway.models import (
    CreateApiKey,
    CreateRelationship,
    Login,
    Refresh,
    RegisterUser,
    UpdateUser,
)
from gateway.users import select_user, select_users
from kernel.domain.paging import only_params
from kernel.domain.tenancy import TenantScope
from kernel.runtime.errors import BadRequest, Forbidden
from kernel.runtime.http import Request, Response, json_response


def _rate_class(request: Request) -> str:
    rate = caller(request).route.rate
    assert rate is not None, "a self-counting route names its rate class in the table"
    return rate


async def register(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    body = request.model(RegisterUser, max_bytes=JSON_MAX_BYTES)
    return json_response(await gw.identity().register(TenantScope(who.tenant_id), body), 201)


async def login(gw: Gateway, request: Request) -> Response:
    body = request.model(Login, max_bytes=JSON_MAX_BYTES)
    caller(request).tenant_id = body.tenant_id
    ip = client_ip(request)
    subjects = {
        "ip_email": ratelimit.ip_email_subject(ip, f"{body.tenant_id}/{body.email}"),
        "ip": ip,
    }
    await gw.count(request, gw.tdb(ratelimit.GLOBAL_SCOPE), _rate_class(request), subjects)
    return json_response(await gw.identity().login(body))


async def refresh(gw: Gateway, request: Request) -> Response:
    body = request.model(Refresh, max_bytes=JSON_MAX_BYTES)
    subjects = {"ip": client_ip(request)}
    await gw.count(request, gw.tdb(ratelimit.GLOBAL_SCOPE), _rate_class(request), subjects)
    return json_response(await gw.identity().refresh(body.refresh_token))


async def me(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    body: dict[str, Any] = {
        "id": who.id,
        "tenant_id": who.tenant_id,
        "role": who.role,
        "kind": who.kind,
    }
    if who.kind == "user":
        db = gw.tdb(who.tenant_id)
        row = (await db.run(select_user(db, who.id))).rows[0]
        body.update(email=row["email"], name=row["name"], created_at=row["created_at"])
    return json_response(body)


async def logout(gw: Gateway, request: Request) -> Response:
    """End the caller's session: its refresh tokens and, at once, its access tokens."""
    who = principal(request)
    if who.session is None:
        raise BadRequest(
            "API keys have no session to log out of: revoke the key with DELETE /v1/api-keys/{id}",
            code="not_a_session",
        )
    await gw.identity().logout(TenantScope(who.tenant_id), who.id, who.session)
    return json_response({"logged_out": True})


async def update_user(gw: Gateway, request: Request) -> Response:
    """Admins: `{role?, disabled?}`. Not on themselves, so no admin locks themselves out."""
    who = principal(request)
    body = request.model(UpdateUser, max_bytes=JSON_MAX_BYTES)
    user_id = request.params["user_id"]
    if user_id == who.id and (body.disabled or body.role not in (None, "admin")):
        raise Forbidden("admins cannot disable or demote themselves; another admin can")
    return json_response(await gw.identity().update(TenantScope(who.tenant_id), user_id, body))


async def list_users(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    only_params(request.query)  # not paginated: a limit or cursor would be ignored
    db = gw.tdb(who.tenant_id)
    role = None if who.role == "admin" else "student"  # teachers look up students
    return json_response({"users": (await db.run(select_users(db, role))).rows})


async def list_api_keys(gw: Gateway, request: Request) -> Response:
    only_params(request.query)
    return json_response(
        {"api_keys": await apikeys.list_keys(gw.tdb(principal(request).tenant_id))}
    )


async def create_api_key(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    body = request.model(CreateApiKey, max_bytes=JSON_MAX_BYTES)
    created = await apikeys.create(gw.tdb(who.tenant_id), body.role, body.name, who.id)
    return json_response(created, 201)


async def revoke_api_key(gw: Gateway, request: Request) -> Response:
    db = gw.tdb(principal(request).tenant_id)
    return json_response(await apikeys.revoke(db, request.params["key_id"]))


async def create_relationship(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    body = request.model(CreateRelationship, max_bytes=JSON_MAX_BYTES)
    return json_response(await relationships.create(gw.tdb(who.tenant_id), who, body), 201)


async def list_relationships(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    only_params(request.query)
    db = gw.tdb(who.tenant_id)
    return json_response({"relationships": (await db.run(relationships.select_for(db, who))).rows})


async def delete_relationship(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    deleted = await relationships.delete(
        gw.tdb(who.tenant_id), who, request.params["relationship_id"]
    )
    return json_response(deleted)


async def rate_limit_status(gw: Gateway, request: Request) -> Response:
    who = principal(request)
    db = gw.tdb(who.tenant_id)
    windows = []
    limits = await gw.limits_for(db)
    for route_class in (
        "search",
        "answer",
        "ingest",
        "api",
        "personalize",
        "translate",
        "tts",
        "analysis",
        "feedback",
    ):
        windows += ratelimit.windows_for(limits, route_class, {"user": who.id, "tenant": "*"})
    decisions = await ratelimit.peek(db, windows)
    # The same RateLimit-* headers as every route, for the caller's tightest window.
    caller(request).rate_headers = ratelimit.headers(decisions)
    return json_response(
        {
            "windows": [
                {
                    "route_class": d.window.route_class,
                    "scope": d.window.scope,
                    "limit": d.window.limit,
                    "window_seconds": d.window.seconds,
                    "used": d.hits,
                    "remaining": d.remaining,
                    "reset_seconds": d.reset,
                }
                for d in decisions
            ],
            "token_budget": await budget.status(db, gw.token_budget),
        }
    )
