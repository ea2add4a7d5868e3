"""Users per tenant: registration, login, refresh-token rotation with reuse detection.

Refresh tokens are opaque (`ert_` + 48 random characters), stored as SHA-256, valid for
REFRESH_TTL_SECONDS and single-use: a refresh marks the presented token rotated (one
conditional UPDATE, so two concurrent refreshes cannot both succeed) and issues its successor in
the same family. Presenting a rotated or revoked token again means it leaked: the whole family
is revoked and the caller has to log in again.

A family is a login session: access tokens name it (`sid`), and gateway/auth.py refuses an
access token whose family is revoked, so logout, reuse detection and disabling a user end the
session's access tokens at once rather than when they expire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway import jwt, passwords
from gateway.models import Login, RegisterUser, UpdateUser
from kernel.bindings.ports import ConstraintViolation, Database, Statement
from kernel.domain.tenancy import TenantDB, TenantScope
from kernel.runtime.errors import ApiError, Conflict, NotFound, Unauthorized
from kernel.runtime.ids import new_id, random_token, sha256_hex
from kernel.runtime.logs import log
from kernel.runtime.metrics import registry

REFRESH_PREFIX = "ert_"
REFRESH_TTL_SECONDS = 30 * 24 * 3600
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


# --- SQL (pure; tested by text) ------------------------------------------------------------
def select_user(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        "SELECT id, email, name, role, created_at, disabled_at FROM users"
        " WHERE tenant_id = ?1 AND id = ?2",
        (user_id,),
    )


def select_user_in_session(db: TenantDB, user_id: str, family_id: str) -> Statement:
    """The user row plus whether the access token's session (refresh family) is still live:
    one query per authenticated request, on the (tenant_id, family_id) index."""
    return db.statement(
        "SELECT id, email, name, role, created_at, disabled_at, EXISTS ("
        "SELECT 1 FROM refresh_tokens r WHERE r.tenant_id = ?1 AND r.family_id = ?3"
        " AND r.user_id = ?2 AND r.revoked_at IS NULL) AS session_live"
        " FROM users WHERE tenant_id = ?1 AND id = ?2",
        (user_id, family_id),
    )


def select_login(db: TenantDB, email: str) -> Statement:
    return db.statement(
        "SELECT id, role, password_hash, disabled_at FROM users WHERE tenant_id = ?1 AND email = ?2",
        (email,),
    )


def select_users(db: TenantDB, role: str | None) -> Statement:
    if role is None:
        return db.statement(
            "SELECT id, email, name, role, created_at, disabled_at FROM users"
            " WHERE tenant_id = ?1 ORDER BY created_at, id LIMIT 1000"
        )
    return db.statement(
        "SELECT id, email, name, role, created_at, disabled_at FROM users"
        " WHERE tenant_id = ?1 AND role = ?2 ORDER BY created_at, id LIMIT 1000",
        (role,),
    )


def insert_user(
    db: TenantDB, user_id: str, email: str, name: str, role: str, password_hash: str
) -> Statement:
    return db.statement(
        "INSERT INTO users (tenant_id, id, email, name, role, password_hash)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (user_id, email, name, role, password_hash),
    )


def update_password_hash(db: TenantDB, user_id: str, password_hash: str) -> Statement:
    return db.statement(
        "UPDATE users SET password_hash = ?3 WHERE tenant_id = ?1 AND id = ?2",
        (user_id, password_hash),
    )


def insert_refresh(
    db: TenantDB, token_id: str, user_id: str, family_id: str, token_hash: str, expires_at: float
) -> Statement:
    return db.statement(
        "INSERT INTO refresh_tokens (tenant_id, id, user_id, family_id, token_hash, expires_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (token_id, user_id, family_id, token_hash, expires_at),
    )


def find_refresh(token_hash: str) -> Statement:
    """By hash across tenants (the token names no tenant); unique, like API key lookups."""
    return Statement(
        "SELECT id, tenant_id, user_id, family_id, expires_at, rotated_at, revoked_at"
        " FROM refresh_tokens WHERE token_hash = ?1",
        (token_hash,),
    )


def rotate_refresh(db: TenantDB, token_id: str) -> Statement:
    return db.statement(
        f"UPDATE refresh_tokens SET rotated_at = {NOW}"
        " WHERE tenant_id = ?1 AND id = ?2 AND rotated_at IS NULL AND revoked_at IS NULL",
        (token_id,),
    )


def revoke_family(db: TenantDB, family_id: str) -> Statement:
    return db.statement(
        f"UPDATE refresh_tokens SET revoked_at = {NOW}"
        " WHERE tenant_id = ?1 AND family_id = ?2 AND revoked_at IS NULL",
        (family_id,),
    )


def revoke_user_sessions(db: TenantDB, user_id: str) -> Statement:
    return db.statement(
        f"UPDATE refresh_tokens SET revoked_at = {NOW}"
        " WHERE tenant_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        (user_id,),
    )


def set_role(db: TenantDB, user_id: str, role: str) -> Statement:
    return db.statement(
        "UPDATE users SET role = ?3 WHERE tenant_id = ?1 AND id = ?2", (user_id, role)
    )


def set_disabled(db: TenantDB, user_id: str, disabled: bool) -> Statement:
    if disabled:  # keep the first disabling time when disabled twice
        return db.statement(
            f"UPDATE users SET disabled_at = COALESCE(disabled_at, {NOW})"
            " WHERE tenant_id = ?1 AND id = ?2",
            (user_id,),
        )
    return db.statement(
        "UPDATE users SET disabled_at = NULL WHERE tenant_id = ?1 AND id = ?2", (user_id,)
    )


# --- flows ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    db: Database
    ring: jwt.KeyRing
    iterations: int = passwords.DEFAULT_ITERATIONS

    async def register(self, scope: TenantScope, body: RegisterUser) -> dict[str, Any]:
        tdb = TenantDB(self.db, scope)
        user_id = new_id("u")
        hashed = passwords.hash_password(body.password, self.iterations)
        try:
            await tdb.run(insert_user(tdb, user_id, body.email, body.name, body.role, hashed))
        except ConstraintViolation as exc:  # the (tenant, email) unique index
            raise Conflict(
                "a user with this email already exists in the tenant", code="email_taken"
            ) from exc
        return {"id": user_id, "email": body.email, "name": body.name, "role": body.role}

    async def login(self, body: Login) -> dict[str, Any]:
        tdb = TenantDB(self.db, TenantScope(body.tenant_id))
        rows = (await tdb.run(select_login(tdb, body.email))).rows
        if not rows:
            passwords.burn_time(body.password, self.iterations)  # same cost as a wrong password
            raise _bad_login()
        row = rows[0]
        if not passwords.verify_password(body.password, str(row["password_hash"])):
            raise _bad_login()
        if row["disabled_at"] is not None:
            raise _bad_login()
        if passwords.needs_rehash(str(row["password_hash"]), self.iterations):
            await tdb.run(
                update_password_hash(
                    tdb, str(row["id"]), passwords.hash_password(body.password, self.iterations)
                )
            )
        return await self._issue(tdb, str(row["id"]), str(row["role"]), new_id("fam"))

    async def refresh(self, token: str) -> dict[str, Any]:
        if not token.startswith(REFRESH_PREFIX) or len(token) > 128:
            raise _bad_refresh("malformed")
        rows = (await self.db.execute(*_sql(find_refresh(sha256_hex(token))))).rows
        if not rows:
            raise _bad_refresh("unknown")
        row = rows[0]
        tdb = TenantDB(self.db, TenantScope(str(row["tenant_id"])))
        if row["rotated_at"] is not None or row["revoked_at"] is not None:
            await self._reuse(tdb, row)
        if float(row["expires_at"]) < time.time():
            raise _bad_refresh("expired")
        rotated = await tdb.run(rotate_refresh(tdb, str(row["id"])))
        if rotated.changes != 1:  # lost a race with another use of the same token: reuse
            await self._reuse(tdb, row)
        users = (await tdb.run(select_user(tdb, str(row["user_id"])))).rows
        if not users or users[0]["disabled_at"] is not None:
            await tdb.run(revoke_family(tdb, str(row["family_id"])))
            raise _bad_refresh("user_disabled")
        return await self._issue(
            tdb, str(row["user_id"]), str(users[0]["role"]), str(row["family_id"])
        )

    async def logout(self, scope: TenantScope, user_id: str, family_id: str) -> None:
        """End one session: its refresh tokens and, through `sid`, its access tokens."""
        tdb = TenantDB(self.db, scope)
        await tdb.run(revoke_family(tdb, family_id))
        log("logout", tenant=scope.tenant_id, user=user_id, family=family_id)

    async def update(self, scope: TenantScope, user_id: str, body: UpdateUser) -> dict[str, Any]:
        """Admins change a role or disable/enable a user. A role change applies from the next
        request (the row is re-read on every one); disabling also ends every session, so
        enabling again needs a fresh login."""
        tdb = TenantDB(self.db, scope)
        if not (await tdb.run(select_user(tdb, user_id))).rows:
            raise NotFound(f"user {user_id} not found")
        statements = []
        if body.role is not None:
            statements.append(set_role(tdb, user_id, body.role))
        if body.disabled is not None:
            statements.append(set_disabled(tdb, user_id, body.disabled))
        if body.disabled:
            statements.append(revoke_user_sessions(tdb, user_id))
        await tdb.batch(statements)
        log(
            "user_updated",
            tenant=scope.tenant_id,
            user=user_id,
            role=body.role,
            disabled=body.disabled,
        )
        return dict((await tdb.run(select_user(tdb, user_id))).rows[0])

    async def _reuse(self, tdb: TenantDB, row: dict[str, Any]) -> None:
        await tdb.run(revoke_family(tdb, str(row["family_id"])))
        log(
            "refresh_token_reuse",
            level="warning",
            tenant=tdb.scope.tenant_id,
            user=row["user_id"],
            family=row["family_id"],
        )
        raise _bad_refresh(
            "reused",
            "refresh token was already used; every session of this login is revoked",
            "refresh_token_reused",
        )

    async def _issue(
        self, tdb: TenantDB, user_id: str, role: str, family_id: str
    ) -> dict[str, Any]:
        refresh = REFRESH_PREFIX + random_token(48)
        await tdb.run(
            insert_refresh(
                tdb,
                new_id("rt"),
                user_id,
                family_id,
                sha256_hex(refresh),
                time.time() + REFRESH_TTL_SECONDS,
            )
        )
        access = jwt.issue(
            self.ring,
            subject=user_id,
            tenant_id=tdb.scope.tenant_id,
            role=role,
            jti=new_id("at"),
            session=family_id,
        )
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": jwt.ACCESS_TTL_SECONDS,
        }


def _sql(statement: Statement) -> tuple[str, Any]:
    return statement.sql, statement.params


def _bad_login() -> ApiError:
    registry("gateway").inc(
        "edgerag_auth_failures_total", help="Refused credentials, by reason", reason="login"
    )
    return Unauthorized("invalid email or password", code="invalid_credentials")


def _bad_refresh(
    reason: str, message: str = "invalid refresh token", code: str = "invalid_refresh_token"
) -> ApiError:
    registry("gateway").inc(
        "edgerag_auth_failures_total",
        help="Refused credentials, by reason",
        reason=f"refresh_{reason}",
    )
    return Unauthorized(message, code=code)
