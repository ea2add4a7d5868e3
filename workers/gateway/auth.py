"""Who is calling: the operator (above tenants), a tenant's API key, or a user's access token.

API keys (`erk_…`) are looked up by SHA-256. Access tokens are HS256 JWTs (gateway/jwt.py); a
valid signature only proves who the token was issued to — the user row and the token's session
(`sid`, its refresh family) are re-read from D1 on every request, in one query, so a disabled
user, a changed role, a logout or a revoked family takes effect at once, and a token whose
tenant, user and session do not belong together finds nothing. Every refusal is a 401 in the one error
shape, logged and counted by reason (`edgerag_auth_failures_total`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

from gateway import jwt
from gateway.users import select_user_in_session
from kernel.bindings.ports import Database
from kernel.domain.tenancy import MissingTenant, TenantDB, TenantScope
from kernel.runtime.errors import Unauthorized
from kernel.runtime.http import Request
from kernel.runtime.ids import random_token, sha256_hex
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry

API_KEY_PREFIX = "erk_"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    id: str  # the API key id or the user id: documents' owner_id, chat sessions' owner
    role: str  # admin | teacher | student
    kind: str = "api_key"  # api_key | user
    session: str | None = None  # users: the refresh family the access token belongs to

    @property
    def key_id(self) -> str:
        return self.id


def auth_failure(reason: str, message: str, request: Request, code: str | None = None) -> NoReturn:
    registry("gateway").inc(
        "edgerag_auth_failures_total", help="Refused credentials, by reason", reason=reason
    )
    log("auth_failure", level="warning", request_id=request.request_id, reason=reason)
    # RFC 6750 §3: how to authenticate (MCP clients read it); `invalid_token` once one was sent.
    invalid = "" if reason == "missing" else ', error="invalid_token"'
    challenge = f'Bearer realm="edgerag"{invalid}'
    raise Unauthorized(message, code=code, headers={"www-authenticate": challenge})


def bearer_token(request: Request) -> str:
    header = request.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        auth_failure("missing", "missing bearer token: send `Authorization: Bearer <key>`", request)
    return token.strip()


def require_operator(request: Request, operator_token: str | None) -> None:
    if not operator_token:
        # Fail closed: an unconfigured operator token must not mean "anyone is operator".
        raise Unauthorized("operator token is not configured on this deployment")
    token = bearer_token(request)
    if not hmac.compare_digest(token.encode(), operator_token.encode()):
        auth_failure("operator_token", "invalid operator token", request)


def is_operator(request: Request, operator_token: str | None) -> bool:
    header = request.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    return bool(
        operator_token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), operator_token.encode())
    )


def new_api_key() -> tuple[str, str]:
    """Returns (key shown once to the caller, sha256 stored)."""
    key = API_KEY_PREFIX + random_token(40)
    return key, sha256_hex(key)


async def authenticate(request: Request, db: Database, ring: jwt.KeyRing | None) -> Principal:
    token = bearer_token(request)
    if token.startswith(API_KEY_PREFIX):
        return await _api_key(request, db, token)
    if jwt.looks_like_jwt(token):
        return await _access_token(request, db, ring, token)
    auth_failure("malformed", "invalid API key or access token", request)


async def _api_key(request: Request, db: Database, token: str) -> Principal:
    if len(token) > 128:
        auth_failure("api_key", "invalid API key", request)
    # Lookup by hash: equality on a SHA-256 of a 238-bit random key leaks nothing usable by timing.
    result = await db.execute(
        "SELECT id, tenant_id, role FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        (sha256_hex(token),),
    )
    if not result.rows:
        auth_failure("api_key", "invalid API key", request)
    row = result.rows[0]
    return Principal(tenant_id=str(row["tenant_id"]), id=str(row["id"]), role=str(row["role"]))


async def _access_token(
    request: Request, db: Database, ring: jwt.KeyRing | None, token: str
) -> Principal:
    if ring is None:
        auth_failure(
            "jwt_unconfigured", "access tokens are not enabled on this deployment", request
        )
    try:
        claims = jwt.verify(ring, token)
    except jwt.TokenError as exc:
        if exc.reason == "expired":
            auth_failure("expired", "access token expired: refresh it", request, "token_expired")
        auth_failure(exc.reason, "invalid access token", request)
    try:
        scope = TenantScope(claims["tid"])
    except MissingTenant:
        auth_failure("bad_tenant", "invalid access token", request)
    tdb = TenantDB(db, scope)
    rows = (await tdb.run(select_user_in_session(tdb, claims["sub"], claims["sid"]))).rows
    if not rows or rows[0]["disabled_at"] is not None:
        auth_failure("unknown_user", "invalid access token", request)
    if not rows[0]["session_live"]:
        auth_failure("session_revoked", "session ended: log in again", request)
    return Principal(
        tenant_id=scope.tenant_id,
        id=claims["sub"],
        role=str(rows[0]["role"]),  # the row's, not the token's: a role change applies at once
        kind="user",
        session=claims["sid"],
    )
