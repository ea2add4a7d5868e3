"""rag.cache, gateway.budget and gateway.access on the emulated D1 (the repo's migrations) and
KV — real SQLite, no mesh."""

from __future__ import annotations

import pytest

from emulator.d1 import EmulatedD1
from emulator.kv import EmulatedKV
from gateway import budget
from gateway.access import require_role, viewer_for
from gateway.auth import Principal
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from kernel.runtime.errors import Forbidden, RateLimited
from rag.cache import Caches

A, B = "t_" + "a" * 24, "t_" + "b" * 24


async def _tenant(d1: EmulatedD1, tenant_id: str) -> None:
    await d1.execute("INSERT INTO tenants (id, name) VALUES (?1, ?2)", (tenant_id, tenant_id))


def _tdb(d1: EmulatedD1, tenant_id: str, viewer: Viewer | None = None) -> TenantDB:
    return TenantDB(d1, TenantScope(tenant_id, viewer))


# --- rag.cache ---------------------------------------------------------------------------
async def test_cache_keys_live_under_the_tenant_and_hash_the_whole_request(
    d1: EmulatedD1,
) -> None:
    kv = EmulatedKV(None)
    admin = Viewer("k_1", "admin")
    a, b = Caches(kv, _tdb(d1, A, admin), "rag"), Caches(kv, _tdb(d1, B, admin), "rag")
    await a.put("search", [0, {"query": "canary", "top_k": 5}], {"results": ["secret of A"]})
    assert a.key("search", [0, {"query": "canary"}]).startswith(f"t/{A}/cache/search/")
    assert await a.get("search", [0, {"query": "canary", "top_k": 5}]) == {
        "results": ["secret of A"]
    }
    assert await b.get("search", [0, {"query": "canary", "top_k": 5}]) is None  # other tenant
    assert await a.get("search", [0, {"query": "canary", "top_k": 6}]) is None  # other request


async def test_cached_results_are_shared_only_within_one_visibility_scope(d1: EmulatedD1) -> None:
    kv = EmulatedKV(None)
    teacher = Caches(kv, _tdb(d1, A, Viewer("u_t", "teacher")), "rag")
    student = Caches(kv, _tdb(d1, A, Viewer("u_s", "student", ("u_t",))), "rag")
    admin = Caches(kv, _tdb(d1, A, Viewer("k_1", "admin")), "rag")
    await teacher.put("answer", [0, "q"], {"answer": "from the teacher's private notes"})
    assert await student.get("answer", [0, "q"]) is None
    assert await admin.get("answer", [0, "q"]) is None
    # Query embeddings reveal nothing about documents: shared across the tenant's viewers.
    await teacher.put("embedding", ["model", "q"], [0.1, 0.2])
    assert await student.get("embedding", ["model", "q"]) == [0.1, 0.2]


async def test_corpus_version_reads_d1_and_clear_removes_only_results(d1: EmulatedD1) -> None:
    kv = EmulatedKV(None)
    db = _tdb(d1, A, Viewer("k_1", "admin"))
    caches = Caches(kv, db, "rag")
    assert await caches.corpus_version() == 0
    await d1.execute("INSERT INTO tenant_state (tenant_id, corpus_version) VALUES (?1, 7)", (A,))
    assert await caches.corpus_version() == 7
    for n in range(3):
        await caches.put("search", [n], {"n": n})
    await caches.put("answer", ["x"], {"a": 1})
    await caches.put("embedding", ["e"], [1.0])
    other = Caches(kv, _tdb(d1, B, Viewer("k_2", "admin")), "rag")
    await other.put("search", [0], {"theirs": True})
    assert await caches.clear_results() == 4
    assert await caches.get("search", [0]) is None and await caches.get("answer", ["x"]) is None
    assert await caches.get("embedding", ["e"]) == [1.0]
    assert await other.get("search", [0]) == {"theirs": True}  # another tenant's stay


async def test_without_kv_the_cache_is_a_miss_not_an_error(d1: EmulatedD1) -> None:
    caches = Caches(None, _tdb(d1, A), "rag")
    await caches.put("search", [1], {"x": 1})
    assert await caches.get("search", [1]) is None and await caches.clear_results() == 0


# --- gateway.budget ----------------------------------------------------------------------
async def test_budget_reserves_before_and_settles_after(d1: EmulatedD1) -> None:
    await _tenant(d1, A)
    db = _tdb(d1, A)
    assert await budget.status(db, 100) == {
        "day": budget.today(),
        "budget": 100,
        "used": 0,
        "reserved": 0,
        "remaining": 100,
    }
    first = await budget.require_tokens(db, 100, 30)
    second = await budget.require_tokens(db, 100, 30)
    assert (await budget.status(db, 100))["reserved"] == 60  # both in flight, both visible
    await budget.charge(db, first, 12)  # the reservation goes, what was spent stays
    state = await budget.status(db, 100)
    assert (state["used"], state["reserved"], state["remaining"]) == (12, 30, 88)
    await budget.charge(db, second, 0)  # failed or cached: nothing spent
    assert (await budget.status(db, 100))["reserved"] == 0


async def test_parallel_reservations_stop_at_the_budget(d1: EmulatedD1) -> None:
    await _tenant(d1, A)
    db = _tdb(d1, A)
    admitted = []
    for _ in range(5):  # five requests in flight at once, nothing settled yet
        try:
            admitted.append(await budget.require_tokens(db, 100, 40))
        except RateLimited as refused:
            assert refused.code == "token_budget_exhausted"
            assert 0 < int(refused.headers["retry-after"]) <= budget.DAY + 1
    assert len(admitted) == 3  # 0, 40 and 80 are under 100; at 120 the day is full
    for held in admitted:
        await budget.charge(db, held, 40)
    assert (await budget.status(db, 100))["used"] == 120  # overshoot ≤ one reservation
    with pytest.raises(RateLimited):
        await budget.require_tokens(db, 100, 1)
    with pytest.raises(RateLimited):  # a budget of 0 admits nothing
        await budget.require_tokens(_tdb(d1, A), 0, 1)


async def test_a_tenant_budget_overrides_the_default_and_days_roll_over(d1: EmulatedD1) -> None:
    await _tenant(d1, A)
    await _tenant(d1, B)
    a, b = _tdb(d1, A), _tdb(d1, B)
    await d1.batch([budget.set_budget(a, 1000)])
    await budget.charge(a, await budget.require_tokens(a, 100, 5), 10)
    assert (await budget.status(a, 100))["budget"] == 1000
    assert (await budget.status(b, 100))["used"] == 0  # charges are per tenant
    await d1.batch([budget.set_budget(a, None)])  # back to the deployment default
    assert (await budget.status(a, 100))["budget"] == 100
    yesterday = budget.today(budget.time.time() - budget.DAY)
    await a.execute(
        "INSERT INTO token_usage (tenant_id, day, tokens) VALUES (?1, ?2, 99)", (yesterday,)
    )
    assert (await budget.status(a, 100))["used"] == 10  # only today's usage counts
    assert budget.reserve(a, "2026-01-01", 5, 100).params == (A, "2026-01-01", 5, 100)


# --- gateway.access ----------------------------------------------------------------------
async def test_viewer_for_a_student_carries_their_teachers_only(d1: EmulatedD1) -> None:
    await _tenant(d1, A)
    await _tenant(d1, B)
    for tenant, rel, teacher_id in (
        (A, "rel_1", "u_t1"),
        (A, "rel_2", "u_t2"),
        (B, "rel_3", "u_x"),
    ):
        await d1.execute(
            "INSERT INTO relationships (tenant_id, id, teacher_id, student_id)"
            " VALUES (?1, ?2, ?3, 'u_s')",
            (tenant, rel, teacher_id),
        )
    student = await viewer_for(_tdb(d1, A), Principal(A, "u_s", "student", "user"))
    assert student == Viewer("u_s", "student", ("u_t1", "u_t2"))
    teacher = await viewer_for(_tdb(d1, A), Principal(A, "u_t1", "teacher", "user"))
    assert teacher.teachers == ()  # only students see through their teachers


def test_require_role_names_the_action_and_the_roles() -> None:
    require_role(Principal(A, "k", "admin"), {"admin"}, "changing settings")
    with pytest.raises(Forbidden) as refused:
        require_role(Principal(A, "u", "student"), {"admin", "teacher"}, "uploading documents")
    assert str(refused.value) == "uploading documents needs one of the roles: admin, teacher"
