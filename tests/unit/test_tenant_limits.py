"""A tenant's own rate limits: validation against the ceilings, and the effective table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway import ratelimit, tenant_limits
from kernel.runtime.errors import ValidationFailed

CEILINGS = ratelimit.load_limits('{"personalize": {"user": [8, 86400]}}')


def test_admins_stay_under_the_ceiling_operators_do_not() -> None:
    assert tenant_limits.validate({"personalize": {"user": 8}}, {}, CEILINGS, operator=False) == {
        "personalize": {"user": 8}
    }
    with pytest.raises(ValidationFailed, match="at most 8"):
        tenant_limits.validate({"personalize": {"user": 9}}, {}, CEILINGS, operator=False)
    assert tenant_limits.validate({"personalize": {"user": 90}}, {}, CEILINGS, operator=True) == {
        "personalize": {"user": 90}
    }
    for bad in ({"login": {"ip": 1}}, {"nope": {"user": 1}}, {"answer": {"ip": 1}}):
        with pytest.raises(ValidationFailed):
            tenant_limits.validate(bad, {}, CEILINGS, operator=True)


def test_null_returns_to_the_deployment_and_empty_classes_go() -> None:
    current = {"answer": {"user": 2, "tenant": 10}, "translate": {"user": 1}}
    after = tenant_limits.validate(
        {"answer": {"user": None}, "translate": {"user": None}}, current, CEILINGS, operator=False
    )
    assert after == {"answer": {"tenant": 10}}


def test_effective_limits_keep_the_deployments_windows() -> None:
    limits = tenant_limits.effective(CEILINGS, {"answer": {"user": 3}, "ghost": {"user": 1}})
    assert limits["answer"]["user"] == (3, 3600)
    assert limits["answer"]["tenant"] == ratelimit.DEFAULT_LIMITS["answer"]["tenant"]
    assert "ghost" not in limits and CEILINGS["answer"]["user"] == (20, 3600)  # not mutated


def test_overrides_are_cached_per_isolate_for_thirty_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from kernel.domain.tenancy import TenantDB, TenantScope

    reads: list[str] = []

    class Db:
        async def execute(self, sql: str, params: tuple[object, ...]) -> SimpleNamespace:
            reads.append(sql)
            return SimpleNamespace(rows=[{"rate_limits": '{"answer": {"user": 3}}'}])

    db = TenantDB(Db(), TenantScope("t_" + "c" * 24))  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(tenant_limits.time, "monotonic", lambda: clock[0])
    tenant_limits._cache.pop(db.scope.tenant_id, None)
    assert asyncio.run(tenant_limits.overrides(db)) == {"answer": {"user": 3}}
    clock[0] += tenant_limits.TTL_S - 1
    asyncio.run(tenant_limits.overrides(db))
    assert len(reads) == 1  # served from the isolate's cache
    clock[0] += 2
    asyncio.run(tenant_limits.overrides(db))
    assert len(reads) == 2  # older than TTL_S: read again
    asyncio.run(tenant_limits.overrides(db, fresh=True))
    assert len(reads) == 3
