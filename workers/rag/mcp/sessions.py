"""MCP sessions in D1 (migrations/0015_mcp_sessions.sql): issued at `initialize`, found on every
later message, ended by DELETE /mcp. A session belongs to the principal that opened it: another
caller presenting its id finds nothing (404), exactly like an id that never existed.

Workers keep no memory between requests, so the row is the session; it holds no credential
and no role (the gateway authenticates and stamps both on every request), only who opened it
and the protocol version negotiated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernel.domain.tenancy import TenantDB
from kernel.runtime.ids import new_id

SESSION_ID = re.compile(r"^mcs_[0-9a-f]{24}$")
LIFETIME = "+1 day"  # an SQLite date modifier: a client re-initializes after a 404
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


@dataclass(frozen=True)
class Session:
    id: str
    protocol_version: str


async def start(db: TenantDB, principal: str, protocol_version: str) -> Session:
    session = Session(new_id("mcs"), protocol_version)
    await db.batch(
        [
            db.statement(f"DELETE FROM mcp_sessions WHERE tenant_id = ?1 AND expires_at <= {_NOW}"),
            db.statement(
                "INSERT INTO mcp_sessions (tenant_id, id, principal_id, protocol_version,"
                " expires_at) VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now',"
                " ?5))",
                (session.id, principal, protocol_version, LIFETIME),
            ),
        ]
    )
    return session


async def find(db: TenantDB, principal: str, session_id: str) -> Session | None:
    if not SESSION_ID.match(session_id):
        return None
    rows = (
        await db.execute(
            "SELECT protocol_version FROM mcp_sessions WHERE tenant_id = ?1 AND id = ?2"
            f" AND principal_id = ?3 AND expires_at > {_NOW}",
            (session_id, principal),
        )
    ).rows
    return Session(session_id, str(rows[0]["protocol_version"])) if rows else None


async def end(db: TenantDB, principal: str, session_id: str) -> bool:
    if not SESSION_ID.match(session_id):
        return False
    done = await db.execute(
        "DELETE FROM mcp_sessions WHERE tenant_id = ?1 AND id = ?2 AND principal_id = ?3",
        (session_id, principal),
    )
    return done.changes > 0
