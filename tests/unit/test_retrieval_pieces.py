from __future__ import annotations

import pytest

from kernel.bindings.ports import Statement
from kernel.domain.fts import rowid_range
from kernel.domain.tenancy import MissingTenant, TenantDB, TenantScope
from rag.fusion import reciprocal_rank_fusion
from rag.keyword import fts_query, keyword_search

TENANT = "t_" + "a" * 24


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wing lift", '"wing" OR "lift"'),
        ("why do wings lift", '"wings" OR "lift"'),
        ("the and of", '"the" OR "and" OR "of"'),
        ('"unbalanced', '"unbalanced"'),
        (
            "NEAR(a b) AND title:x OR -y*",
            '"near" OR "b" OR "title" OR "x" OR "y"',
        ),
        ("Straße über", '"straße" OR "über"'),
        ("*** ??? ---", None),
    ],
)
def test_fts_query_quotes_every_term(text: str, expected: str | None) -> None:
    assert fts_query(text) == expected


def test_fts_query_caps_terms() -> None:
    query = fts_query(" ".join(f"t{i}" for i in range(500)))
    assert query is not None and query.count(" OR ") == 31


def test_keyword_statement_binds_tenant_first() -> None:
    db = TenantDB(object(), TenantScope(TENANT))  # type: ignore[arg-type]
    stmt = keyword_search(db, '"lift"', 10)
    assert isinstance(stmt, Statement)
    assert (
        "tenant_id = ?1" in stmt.sql
        and "MATCH ?2" in stmt.sql
        and "rowid BETWEEN ?4 AND ?5" in stmt.sql
    )
    low, high = rowid_range(TenantScope(TENANT))
    assert stmt.params == (TENANT, '"lift"', 10, low, high, 200)
    assert high - low == (1 << 36) - 1 and low == int("aaaa", 16) << 36 and high < 2**53


def test_tenant_db_refuses_unscoped_sql() -> None:
    db = TenantDB(object(), TenantScope(TENANT))  # type: ignore[arg-type]
    with pytest.raises(MissingTenant):
        db.statement("SELECT * FROM chunks WHERE id = ?1", ("x",))
    with pytest.raises(MissingTenant):
        db.statement("INSERT INTO chunks (id) VALUES (?)", ("x",))


@pytest.mark.parametrize("bad", ["", "t_", "t_XYZ", "x" * 26, "t_" + "a" * 24 + "' OR 1=1"])
def test_scope_rejects_malformed_tenant_ids(bad: str) -> None:
    with pytest.raises(MissingTenant):
        TenantScope(bad)


def test_scope_prefixes() -> None:
    scope = TenantScope(TENANT)
    assert scope.kv_key("cache", "q") == f"t/{TENANT}/cache/q"
    assert scope.r2_key("originals", "h") == f"t/{TENANT}/originals/h"
    assert scope.namespace == TENANT


def test_rrf_rewards_agreement_and_is_deterministic() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert reciprocal_rank_fusion([["x", "y"], ["y", "x"]])[0][0] == "x"  # tie → by id
