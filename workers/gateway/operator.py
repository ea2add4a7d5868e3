"""Operational routes the gateway answers itself: health, metrics, tenants."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway import budget, cors, tenant_limits
from gateway.context import JSON_MAX_BYTES, SERVICES, Gateway, caller
from gateway.models import TenantPolicy
from gateway.tenants import create_tenant as insert_tenant
from kernel.bindings.health import health_report
from kernel.bindings.services import call
from kernel.contracts.api import CreateTenant
from kernel.domain.tenancy import MissingTenant
from kernel.runtime.errors import Forbidden, NotFound
from kernel.runtime.http import Request, Response, json_response, text_response
from kernel.runtime.metrics import merge_exposition, registry, without_label


async def health(gw: Gateway, request: Request) -> Response:
    async def probe(name: str) -> dict[str, Any]:
        try:
            upstream = await call(
                gw.b.service(name), "GET", "/internal/health", request_id=request.request_id
            )
            report = json.loads(upstream.body)
            return (
                report if upstream.status == 200 else {"worker": SERVICES[name], "status": "error"}
            )
        except Exception as exc:  # health must report, not fail
            return {"worker": SERVICES[name], "status": "unreachable", "error": type(exc).__name__}

    reports = await asyncio.gather(*(probe(name) for name in SERVICES))
    workers = [health_report(gw.b), *reports]
    healthy = all(w.get("status") == "ok" for w in workers)
    stand_ins = sorted(
        {
            f"{model}: {info.get('served_by', '?')}"
            for w in workers
            for model, info in (w.get("models") or {}).items()
            if info.get("stand_in")
        }
    )
    body = {
        "status": "ok" if healthy else "degraded",
        "workers": workers,
        "stand_ins": stand_ins,
        "auth": {"access_tokens": gw.ring is not None},
    }
    return json_response(body, 200 if healthy else 503)


async def metrics(gw: Gateway, request: Request) -> Response:
    """Operator token: everything. EDGERAG_METRICS_TOKEN (a scraper's secret): the same numbers
    with the per-tenant label summed away, so it never learns tenant ids or what each one uses."""
    texts = [registry("gateway").render({"worker": "gateway"})]
    for name in SERVICES:
        try:
            upstream = await call(
                gw.b.service(name), "GET", "/internal/metrics", request_id=request.request_id
            )
            if upstream.status == 200:
                texts.append(upstream.body.decode("utf-8"))
        except Exception:  # a missing worker shows up in /health, not as a broken scrape
            continue
    text = merge_exposition(texts)
    if not caller(request).operator:
        text = without_label(text, "tenant")
    return text_response(text, content_type="text/plain; version=0.0.4")


async def create_tenant(gw: Gateway, request: Request) -> Response:
    body = request.model(CreateTenant, max_bytes=JSON_MAX_BYTES)
    return json_response(await insert_tenant(gw.db, body.name), 201)


async def update_tenant(gw: Gateway, request: Request) -> Response:
    """Operator: token budget and CORS. The tenant's own admins (the route's roles): CORS only."""
    tenant_id = request.params["tenant_id"]
    state = caller(request)
    if state.principal is not None and state.principal.tenant_id != tenant_id:
        raise NotFound(f"tenant {tenant_id} not found")
    body = request.model(TenantPolicy, max_bytes=JSON_MAX_BYTES)
    if body.daily_token_budget is not None and not state.operator:
        raise Forbidden("only the operator sets token budgets")
    try:
        db = gw.tdb(tenant_id)
    except MissingTenant as exc:
        raise NotFound(f"tenant {tenant_id} not found") from exc
    exists = (await gw.db.execute("SELECT id FROM tenants WHERE id = ?1", (tenant_id,))).rows
    if not exists:
        raise NotFound(f"tenant {tenant_id} not found")
    statements = []
    if body.cors_origins is not None:
        statements += cors.replace_origins(db, body.cors_origins)
    if body.daily_token_budget is not None:
        statements.append(budget.set_budget(db, body.daily_token_budget))
    tuned = None
    if body.rate_limits is not None:
        current = await tenant_limits.overrides(db, fresh=True)
        tuned = tenant_limits.validate(
            body.rate_limits, current, gw.ceilings, operator=state.operator
        )
        statements.append(tenant_limits.store(db, tuned))
    if statements:
        await db.batch(statements)
    if tuned is not None:
        tenant_limits.remember(tenant_id, tuned)
    origins = (
        await db.execute("SELECT origin FROM cors_origins WHERE tenant_id = ?1 ORDER BY origin")
    ).rows
    return json_response(
        {
            "tenant_id": tenant_id,
            "cors_origins": [r["origin"] for r in origins],
            "token_budget": await budget.status(db, gw.token_budget),
            "rate_limits": tenant_limits.public(await gw.limits_for(db)),
        }
    )
