"""Per-tenant daily LLM token budgets (UTC days), counted in D1.

Checked before an answer or chat message is forwarded (429 `token_budget_exhausted` once the
day's usage reached the budget) and charged with `usage.total_tokens` from the response. Requests
already in flight when the budget runs out still finish, so a day may overshoot by at most their
usage. The budget: `tenant_quotas.daily_token_budget` (set by the operator), else the deployment
var `EDGERAG_DAILY_TOKEN_BUDGET`, else DEFAULT_DAILY_TOKENS.
"""

from __future__ import annotations

import time

from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import RateLimited

DEFAULT_DAILY_TOKENS = 2_000_000
DAY = 86_400


def today(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


def select_budget(db: TenantDB) -> Statement:
    return db.statement("SELECT daily_token_budget FROM tenant_quotas WHERE tenant_id = ?1")


def select_used(db: TenantDB, day: str) -> Statement:
    return db.statement("SELECT tokens FROM token_usage WHERE tenant_id = ?1 AND day = ?2", (day,))


def add_usage(db: TenantDB, day: str, tokens: int) -> Statement:
    return db.statement(
        "INSERT INTO token_usage (tenant_id, day, tokens) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (tenant_id, day) DO UPDATE SET tokens = tokens + excluded.tokens",
        (day, tokens),
    )


def set_budget(db: TenantDB, budget: int | None) -> Statement:
    return db.statement(
        "INSERT INTO tenant_quotas (tenant_id, daily_token_budget) VALUES (?1, ?2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET daily_token_budget = excluded.daily_token_budget,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        (budget,),
    )


async def status(db: TenantDB, default: int) -> dict[str, int | str]:
    day = today()
    rows = (await db.run(select_budget(db))).rows
    budget = rows[0]["daily_token_budget"] if rows else None
    used_rows = (await db.run(select_used(db, day))).rows
    used = int(used_rows[0]["tokens"]) if used_rows else 0
    limit = default if budget is None else int(budget)
    return {"day": day, "budget": limit, "used": used, "remaining": max(0, limit - used)}


async def require_tokens(db: TenantDB, default: int) -> dict[str, int | str]:
    state = await status(db, default)
    if int(state["remaining"]) <= 0:
        now = time.time()
        reset = int(DAY - now % DAY) + 1
        raise RateLimited(
            f"the tenant's daily LLM token budget ({state['budget']}) is used up; it resets at"
            " 00:00 UTC",
            code="token_budget_exhausted",
            headers={"retry-after": str(reset)},
        )
    return state


async def charge(db: TenantDB, tokens: int) -> None:
    if tokens > 0:
        await db.run(add_usage(db, today(), tokens))
