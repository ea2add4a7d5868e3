"""The tool audit log: one row per call, with a hash of the arguments and never the arguments.

SQL is built here as text (tests/unit/test_tools.py reads it) and always binds the tenant as ?1:
one tenant's rows cannot be selected by another's query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.bindings.ports import SqlValue, Statement
from kernel.contracts.mcp import MCP_TOOLS
from kernel.contracts.tools import TOOLS
from kernel.domain.paging import page_params
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import ValidationFailed
from kernel.runtime.ids import sha256_hex

AUDIT_ID = re.compile(r"^aud_[0-9a-f]{24}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$")
_USER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COLUMNS = (
    "id, at, user_id, role, tool, args_sha256, outcome, error_code, latency_ms, request_id,"
    " model_requested, session_id"
)


def args_hash(args: Any) -> str:
    """SHA-256 of the canonical JSON of the arguments (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256_hex(canonical)


@dataclass(frozen=True)
class Entry:
    id: str
    user_id: str
    role: str
    tool: str
    args_sha256: str
    outcome: str  # ok | error
    error_code: str | None
    latency_ms: float
    request_id: str
    model_requested: bool
    session_id: str | None = None


def insert(db: TenantDB, e: Entry) -> Statement:
    return db.statement(
        "INSERT INTO tool_audit (tenant_id, id, user_id, role, tool, args_sha256, outcome,"
        " error_code, latency_ms, request_id, model_requested, session_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        (
            e.id,
            e.user_id,
            e.role,
            e.tool,
            e.args_sha256,
            e.outcome,
            e.error_code,
            round(e.latency_ms, 3),
            e.request_id,
            int(e.model_requested),
            e.session_id,
        ),
    )


@dataclass(frozen=True)
class AuditQuery:
    limit: int
    cursor: str | None = None
    tool: str | None = None
    user_id: str | None = None
    since: str | None = None  # ISO 8601 UTC, inclusive
    until: str | None = None  # exclusive


def parse_query(query: Mapping[str, str]) -> AuditQuery:
    page = page_params(
        query,
        cursor=AUDIT_ID,
        default=50,
        maximum=200,
        allowed=("tool", "user_id", "since", "until"),
    )
    tool, user = query.get("tool"), query.get("user_id")
    known = {**TOOLS, **MCP_TOOLS}  # MCP calls are audited under MCP's names (`search`, `answer`)
    if tool is not None and tool not in known:
        raise ValidationFailed.field("tool", f"unknown tool; known: {', '.join(known)}")
    if user is not None and not _USER.match(user):
        raise ValidationFailed.field("user_id", "not a user or API key id")
    for name in ("since", "until"):
        if name in query and not _TIME.match(query[name]):
            raise ValidationFailed.field(
                name, "must be an ISO 8601 UTC time, e.g. 2026-12-04T10:00:00Z"
            )
    return AuditQuery(
        page.limit, page.after, tool, user, _iso(query.get("since")), _iso(query.get("until"))
    )


def _iso(value: str | None) -> str | None:
    # Stored times are `YYYY-MM-DDTHH:MM:SS.fffZ`; compare as text on the same shape.
    return None if value is None else value.removesuffix("Z")


def select_page(db: TenantDB, q: AuditQuery) -> Statement:
    """Newest first; keyset on (at, id) so a page boundary never skips or repeats a row."""
    where = ["tenant_id = ?1"]
    values: list[SqlValue] = []
    for column, op, value in (
        ("tool", "=", q.tool),
        ("user_id", "=", q.user_id),
        ("at", ">=", q.since),
        ("at", "<", q.until),
    ):
        if value is not None:
            values.append(value)
            where.append(f"{column} {op} ?{len(values) + 1}")
    if q.cursor is not None:
        values.append(q.cursor)
        n = len(values) + 1
        where.append(
            f"(at, id) < (SELECT at, id FROM tool_audit WHERE tenant_id = ?1 AND id = ?{n})"
        )
    params = [*values, q.limit + 1]
    return db.statement(
        f"SELECT {COLUMNS} FROM tool_audit WHERE {' AND '.join(where)}"
        f" ORDER BY at DESC, id DESC LIMIT ?{len(params) + 1}",
        params,
    )


def page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    entries = [{**r, "model_requested": bool(r["model_requested"])} for r in rows[:limit]]
    more = len(rows) > limit
    return {"entries": entries, "next_cursor": entries[-1]["id"] if more else None}
