"""CORS allowlist per tenant, and the security headers every gateway response carries.

Origins are exact (`scheme://host[:port]`), stored per tenant by its admins; never `*`. A
preflight (OPTIONS) carries no credentials, so it cannot name a tenant: it is answered for an
origin some tenant allows. The real request is authenticated, and its response carries
`Access-Control-Allow-Origin` only when *the caller's* tenant allows the origin — so a browser
page on another tenant's origin cannot read it. No `Access-Control-Allow-Credentials`: the API
uses bearer tokens, never cookies.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kernel.bindings.ports import Database, Statement
from kernel.domain.tenancy import TenantDB

ALLOWED_HEADERS = (
    "authorization, content-type, idempotency-key, x-request-id, mcp-session-id,"
    " mcp-protocol-version"  # an MCP client in a browser (gateway/mcp.py)
)
EXPOSED_HEADERS = (
    "x-request-id, retry-after, ratelimit, ratelimit-policy, ratelimit-limit, ratelimit-remaining,"
    " ratelimit-reset, mcp-session-id"
)
PREFLIGHT_MAX_AGE = "600"

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "cache-control": "no-store",  # API responses are per caller; streams set it themselves too
}


def normalize_origin(origin: str) -> str:
    """`https://App.Example:8443/` → `https://app.example:8443`; anything else is refused."""
    value = origin.strip()
    parts = urlsplit(value)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or "*" in value
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
        or len(value) > 255
    ):
        raise ValueError(f"{origin!r} is not an exact origin like https://app.example.com")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


async def tenant_allows(db: TenantDB, origin: str) -> bool:
    rows = (
        await db.execute(
            "SELECT 1 AS ok FROM cors_origins WHERE tenant_id = ?1 AND origin = ?2",
            (origin.lower(),),
        )
    ).rows
    return bool(rows)


async def any_tenant_allows(db: Database, origin: str) -> bool:
    """Preflight only (no tenant known yet): the real response is checked per tenant."""
    rows = (
        await db.execute(
            "SELECT 1 AS ok FROM cors_origins WHERE origin = ?1 LIMIT 1", (origin.lower(),)
        )
    ).rows
    return bool(rows)


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": EXPOSED_HEADERS,
        "vary": "Origin",
    }


def preflight_headers(origin: str, methods: str) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": methods,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": PREFLIGHT_MAX_AGE,
        "vary": "Origin",
    }


def replace_origins(db: TenantDB, origins: list[str]) -> list[Statement]:
    """Statements replacing the tenant's allowlist (run as one batch)."""
    statements: list[Statement] = [db.statement("DELETE FROM cors_origins WHERE tenant_id = ?1")]
    for origin in origins:
        statements.append(
            db.statement("INSERT INTO cors_origins (tenant_id, origin) VALUES (?1, ?2)", (origin,))
        )
    return statements
