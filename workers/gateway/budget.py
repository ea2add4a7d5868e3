"""Per-tenant daily LLM token budgets (UTC days), counted in D1.

Before an answer or chat message is forwarded, `require_tokens` reserves
EDGERAG_TOKEN_RESERVATION tokens in one D1 statement that only succeeds while the day's used +
reserved tokens are under the budget (else 429 `token_budget_exhausted`); after it, `charge`
replaces the reservation by the tokens the rag Worker reported (`x-edgerag-usage-tokens`). So
parallel requests see each other's reservations: a day overshoots only by what requests in
flight spend beyond what they reserved. The budget: `tenant_quotas.daily_token_budget` (set by the operator), else the deployment
var `EDGERAG_DAILY_TOKEN_BUDGET`, else DEFAULT_DAILY_TOKENS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
    return db.statement(
        "SELECT tokens, reserved FROM token_usage WHERE tenant_id = ?1 AND day = ?2", (day,)
    )


def set_budget(db: TenantDB, budget: int | None) -> Statement:
    return db.statement(
        "INSERT INTO tenant_quotas (tenant_id, daily_token_budget) VALUES (?1, ?2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET daily_token_budget = excluded.daily_token_budget,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        (budget,),
    )


def reserve(db: TenantDB, day: str, tokens: int, budget: int) -> Statement:
    """Set `tokens` aside for one request, in one statement — so concurrent requests serialize
    in D1 — only while the day's used + reserved is under `budget` (changes = 1: admitted)."""
    return db.statement(
        "INSERT INTO token_usage (tenant_id, day, tokens, reserved) SELECT ?1, ?2, 0, ?3"
        " WHERE ?4 > 0"
        " ON CONFLICT (tenant_id, day) DO UPDATE SET reserved = reserved + excluded.reserved"
        " WHERE tokens + reserved < ?4",
        (day, tokens, budget),
    )


def settle(db: TenantDB, day: str, reserved: int, spent: int) -> Statement:
    """Replace a reservation by what the request really spent."""
    return db.statement(
        "UPDATE token_usage SET tokens = tokens + ?4, reserved = MAX(0, reserved - ?3)"
        " WHERE tenant_id = ?1 AND day = ?2",
        (day, reserved, spent),
    )


@dataclass
class Reservation:
    day: str
    tokens: int
    budget: int = 0


async def status(db: TenantDB, default: int) -> dict[str, int | str]:
    day = today()
    rows = (await db.run(select_budget(db))).rows
    budget = rows[0]["daily_token_budget"] if rows else None
    used_rows = (await db.run(select_used(db, day))).rows
    used = int(used_rows[0]["tokens"]) if used_rows else 0
    reserved = int(used_rows[0]["reserved"]) if used_rows else 0
    limit = default if budget is None else int(budget)
    return {
        "day": day,
        "budget": limit,
        "used": used,
        "reserved": reserved,
        "remaining": max(0, limit - used),
    }


async def require_tokens(db: TenantDB, default: int, reservation: int) -> Reservation:
    """Admit the request and reserve `reservation` tokens, or 429 `token_budget_exhausted`."""
    day = today()
    rows = (await db.run(select_budget(db))).rows
    stored = rows[0]["daily_token_budget"] if rows else None
    budget = default if stored is None else int(stored)
    if (await db.run(reserve(db, day, reservation, budget))).changes == 1:
        return Reservation(day, reservation, budget)
    reset = int(DAY - time.time() % DAY) + 1
    raise RateLimited(
        f"the tenant's daily LLM token budget ({budget}) is used up or reserved by requests in"
        " flight; it resets at 00:00 UTC",
        code="token_budget_exhausted",
        headers={"retry-after": str(reset)},
    )


async def charge(db: TenantDB, reservation: Reservation, spent: int) -> None:
    """Settle: the reservation goes, what was spent stays (0 for a failed or cached request)."""
    await db.run(settle(db, reservation.day, reservation.tokens, max(0, spent)))


async def extend(db: TenantDB, held: Reservation, tokens: int) -> bool:
    """Reserve `tokens` more for a request in flight (a stream that outgrew its reservation);
    False when the budget has no room left — the stream then ends."""
    if (await db.run(reserve(db, held.day, tokens, held.budget))).changes != 1:
        return False
    held.tokens += tokens
    return True
