"""A tenant's own rate limits: its admin tunes a class's per-user or per-tenant count within
the operator's ceilings; the operator may set any count. Windows stay the deployment's (a day
for personalize and translate, an hour for answers), so limits are comparable across tenants.

Stored as JSON in `tenant_quotas.rate_limits` and read on every authenticated request, through
a small per-isolate cache (TTL_S): a change applies at once in the isolate that made it and
within TTL_S everywhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from gateway.ratelimit import Limits
from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB
from kernel.runtime.errors import ValidationFailed

TTL_S = 30.0
TUNABLE = frozenset(
    {"answer", "search", "ingest", "api", "personalize", "translate", "tts", "analysis", "feedback"}
)
Overrides = dict[str, dict[str, int]]
_cache: dict[str, tuple[float, Overrides]] = {}


def select(db: TenantDB) -> Statement:
    return db.statement("SELECT rate_limits FROM tenant_quotas WHERE tenant_id = ?1")


def store(db: TenantDB, overrides: Overrides) -> Statement:
    return db.statement(
        "INSERT INTO tenant_quotas (tenant_id, rate_limits) VALUES (?1, ?2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET rate_limits = excluded.rate_limits,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        (json.dumps(overrides, sort_keys=True) if overrides else None,),
    )


async def overrides(db: TenantDB, *, fresh: bool = False) -> Overrides:
    clock = time.monotonic()
    hit = _cache.get(db.scope.tenant_id)
    if hit is not None and not fresh and clock - hit[0] < TTL_S:
        return hit[1]
    rows = (await db.run(select(db))).rows
    raw = rows[0]["rate_limits"] if rows else None
    found: Overrides = json.loads(str(raw)) if raw else {}
    _cache[db.scope.tenant_id] = (clock, found)
    return found


def remember(tenant_id: str, value: Overrides) -> None:
    _cache[tenant_id] = (time.monotonic(), value)


def effective(limits: Limits, tuned: Mapping[str, Mapping[str, int]]) -> Limits:
    """The deployment's limits with the tenant's counts (same windows)."""
    out = {cls: dict(scopes) for cls, scopes in limits.items()}
    for cls, scopes in tuned.items():
        for scope, count in scopes.items():
            if cls in out and scope in out[cls]:
                out[cls][scope] = (int(count), out[cls][scope][1])
    return out


def validate(
    change: Mapping[str, Mapping[Any, int | None]],
    current: Overrides,
    ceilings: Limits,
    *,
    operator: bool,
) -> Overrides:
    """The stored overrides after a PATCH (a null count returns to the deployment's)."""
    new: dict[str, dict[str, int]] = {c: dict(s) for c, s in current.items()}
    for cls, scopes in change.items():
        if cls not in TUNABLE or cls not in ceilings:
            raise ValidationFailed.field(
                f"rate_limits.{cls}", f"not a tunable route class ({', '.join(sorted(TUNABLE))})"
            )
        for scope, count in scopes.items():
            field = f"rate_limits.{cls}.{scope}"
            if scope not in ceilings[cls]:
                raise ValidationFailed.field(
                    field, f"{cls} has no {scope} window (only {', '.join(ceilings[cls])})"
                )
            if count is None:
                new.get(cls, {}).pop(scope, None)
                continue
            top = ceilings[cls][scope][0]
            if not operator and count > top:
                raise ValidationFailed.field(field, f"the operator allows at most {top} here")
            new.setdefault(cls, {})[scope] = count
    return {c: s for c, s in new.items() if s}


def public(limits: Limits) -> dict[str, Any]:
    return {
        cls: {scope: {"limit": n, "window_seconds": w} for scope, (n, w) in scopes.items()}
        for cls, scopes in sorted(limits.items())
        if cls in TUNABLE
    }
