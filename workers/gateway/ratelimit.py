"""Rate limits: fixed windows counted in D1 (strongly consistent), per route class.

Each request increments its window counters with one atomic statement —
`INSERT … ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits` — and is admitted when the
returned count is within the limit. There is no read-then-write, so N parallel requests against
a limit of M admit exactly M (tests/e2e/test_limits.py proves it). Denied requests still count,
which cannot admit more than M. When a bucket's new window opens, its older windows are deleted.

Windows per route class (defaults below; the deployment var `EDGERAG_RATE_LIMITS` overrides,
e.g. `{"answer": {"user": [20, 3600]}}`): per user (the API key or user id) and per tenant for
authenticated routes; per IP+email and per IP for login, per IP for refresh. Pre-auth counters
live under GLOBAL_SCOPE, a reserved tenant id no tenant gets.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kernel.bindings.ports import Statement
from kernel.domain.tenancy import TenantDB
from kernel.runtime.ids import sha256_hex

GLOBAL_SCOPE = "t_" + "0" * 24

# class → {scope: (limit, window seconds)}
Limits = dict[str, dict[str, tuple[int, int]]]
DAY = 86400
DEFAULT_LIMITS: Limits = {
    "answer": {"user": (20, 3600), "tenant": (2000, 3600)},
    # Learning features (issue 13): a model rewrites or translates a whole section per call.
    "personalize": {"user": (5, DAY), "tenant": (500, DAY)},
    "translate": {"user": (5, DAY), "tenant": (500, DAY)},
    "tts": {"user": (50, DAY), "tenant": (5000, DAY)},
    # Workspaces (issue 14): an analyzer run, and feedback a model writes from it.
    "analysis": {"user": (30, DAY), "tenant": (3000, DAY)},
    "feedback": {"user": (20, DAY), "tenant": (2000, DAY)},
    "search": {"user": (120, 60), "tenant": (3000, 60)},
    "ingest": {"user": (60, 3600), "tenant": (1000, 3600)},
    "api": {"user": (600, 60), "tenant": (10000, 60)},
    "status": {"user": (6000, 60), "tenant": (60000, 60)},
    "login": {"ip_email": (10, 900), "ip": (100, 900)},
    "refresh": {"ip": (60, 900)},
}


def load_limits(override: str | None) -> Limits:
    limits = {cls: dict(scopes) for cls, scopes in DEFAULT_LIMITS.items()}
    if not override:
        return limits
    data = json.loads(override)
    for cls, scopes in data.items():
        for scope, (limit, window) in scopes.items():
            limits.setdefault(cls, {})[scope] = (int(limit), int(window))
    return limits


@dataclass(frozen=True)
class Window:
    route_class: str
    scope: str  # user | tenant | ip | ip_email
    subject: str
    limit: int
    seconds: int

    @property
    def bucket(self) -> str:
        return f"{self.route_class}:{self.scope}:{self.subject}"

    def start(self, now: float) -> int:
        return int(now // self.seconds) * self.seconds


@dataclass(frozen=True)
class Decision:
    window: Window
    hits: int
    reset: int  # seconds until the window ends

    @property
    def admitted(self) -> bool:
        return self.hits <= self.window.limit

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.hits)


def count_hit(db: TenantDB, window: Window, start: int) -> Statement:
    return db.statement(
        "INSERT INTO rate_counters (tenant_id, bucket, window_start, hits) VALUES (?1, ?2, ?3, 1)"
        " ON CONFLICT (tenant_id, bucket, window_start) DO UPDATE SET hits = hits + 1"
        " RETURNING hits",
        (window.bucket, start),
    )


def drop_old_windows(db: TenantDB, window: Window, start: int) -> Statement:
    return db.statement(
        "DELETE FROM rate_counters WHERE tenant_id = ?1 AND bucket = ?2 AND window_start < ?3",
        (window.bucket, start),
    )


def read_hits(db: TenantDB, window: Window, start: int) -> Statement:
    return db.statement(
        "SELECT hits FROM rate_counters WHERE tenant_id = ?1 AND bucket = ?2 AND window_start = ?3",
        (window.bucket, start),
    )


def windows_for(
    limits: Mapping[str, Mapping[str, tuple[int, int]]],
    route_class: str,
    subjects: Mapping[str, str],
) -> list[Window]:
    """The windows a request counts against, given its subjects per scope."""
    out: list[Window] = []
    for scope, (limit, seconds) in limits.get(route_class, {}).items():
        if scope in subjects:
            out.append(Window(route_class, scope, subjects[scope], limit, seconds))
    return out


def ip_email_subject(ip: str, email: str) -> str:
    # Hashed: counters must not become a store of who tried to log in from where.
    return sha256_hex(f"{ip}\x1f{email.lower()}")[:32]


async def hit(db: TenantDB, windows: list[Window], now: float | None = None) -> list[Decision]:
    """Count the request in each window, stopping at the first that refuses it."""
    current = time.time() if now is None else now
    decisions: list[Decision] = []
    for window in windows:
        start = window.start(current)
        hits = int((await db.run(count_hit(db, window, start))).rows[0]["hits"])
        if hits == 1:
            await db.run(drop_old_windows(db, window, start))
        reset = max(1, math.ceil(start + window.seconds - current))
        decisions.append(Decision(window, hits, reset))
        if hits > window.limit:
            break
    return decisions


def uncount(db: TenantDB, window: Window, start: int) -> Statement:
    return db.statement(
        "UPDATE rate_counters SET hits = hits - 1"
        " WHERE tenant_id = ?1 AND bucket = ?2 AND window_start = ?3 AND hits > 0",
        (window.bucket, start),
    )


async def refund(db: TenantDB, decisions: list[Decision], now: float | None = None) -> None:
    """Give a counted request back (it was served from a cache and cost nothing)."""
    current = time.time() if now is None else now
    for d in decisions:
        await db.run(uncount(db, d.window, d.window.start(current)))


async def peek(db: TenantDB, windows: list[Window], now: float | None = None) -> list[Decision]:
    """Current counts without counting (GET /v1/rate-limit/status)."""
    current = time.time() if now is None else now
    out: list[Decision] = []
    for window in windows:
        start = window.start(current)
        rows = (await db.run(read_hits(db, window, start))).rows
        reset = max(1, math.ceil(start + window.seconds - current))
        out.append(Decision(window, int(rows[0]["hits"]) if rows else 0, reset))
    return out


def policy_name(window: Window) -> str:
    """The quota policy's name in RateLimit-Policy / RateLimit: class and scope, e.g.
    "search-user" — never the subject (a user id or IP is not the client's to learn)."""
    return f"{window.route_class}-{window.scope}"


def headers(decisions: list[Decision]) -> dict[str, str]:
    """The rate-limit fields of a response:

    - `RateLimit-Policy` and `RateLimit` as draft-ietf-httpapi-ratelimit-headers (-10 and later)
      define them: one Structured Field list item per window, `"search-user";q=120;w=60` and
      `"search-user";r=119;t=42` (quota, window seconds; remaining, seconds to reset);
    - `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` of the tightest window (the
      refusing one, or the fewest remaining), as earlier drafts had them, for existing clients.
    """
    if not decisions:
        return {}
    refused = [d for d in decisions if not d.admitted]
    tightest = refused[0] if refused else min(decisions, key=lambda d: (d.remaining, -d.reset))
    out = {
        "ratelimit-limit": str(tightest.window.limit),
        "ratelimit-remaining": str(tightest.remaining),
        "ratelimit-reset": str(tightest.reset),
        "ratelimit-policy": ", ".join(
            f'"{policy_name(d.window)}";q={d.window.limit};w={d.window.seconds}' for d in decisions
        ),
        "ratelimit": ", ".join(
            f'"{policy_name(d.window)}";r={d.remaining};t={d.reset}' for d in decisions
        ),
    }
    if refused:
        out["retry-after"] = str(tightest.reset)
    return out
