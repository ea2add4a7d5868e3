"""Who is calling: the operator (above tenants) or a tenant's API key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from kernel.errors import Unauthorized
from kernel.http import Request
from kernel.ids import random_token, sha256_hex
from kernel.ports import Database

API_KEY_PREFIX = "erk_"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    role: str


def bearer_token(request: Request) -> str:
    header = request.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <key>`")
    return token.strip()


def require_operator(request: Request, operator_token: str | None) -> None:
    if not operator_token:
        # Fail closed: an unconfigured operator token must not mean "anyone is operator".
        raise Unauthorized("operator token is not configured on this deployment")
    token = bearer_token(request)
    if not hmac.compare_digest(token.encode(), operator_token.encode()):
        raise Unauthorized("invalid operator token")


def new_api_key() -> tuple[str, str]:
    """Returns (key shown once to the caller, sha256 stored)."""
    key = API_KEY_PREFIX + random_token(40)
    return key, sha256_hex(key)


async def authenticate(request: Request, db: Database) -> Principal:
    token = bearer_token(request)
    if not token.startswith(API_KEY_PREFIX) or len(token) > 128:
        raise Unauthorized("invalid API key")
    # Lookup by hash: equality on a SHA-256 of a 238-bit random key leaks nothing usable by timing.
    result = await db.execute(
        "SELECT id, tenant_id, role FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
        (sha256_hex(token),),
    )
    if not result.rows:
        raise Unauthorized("invalid API key")
    row = result.rows[0]
    return Principal(tenant_id=str(row["tenant_id"]), key_id=str(row["id"]), role=str(row["role"]))
