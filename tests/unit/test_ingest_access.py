"""ingest.access builds its SQL purely: the visibility clause is the search/list one."""

from __future__ import annotations

from ingest.access import select_visible
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer

TENANT = "t_" + "0" * 24


class _NoDB:
    """Statements are built, never run, here."""


def _db() -> TenantDB:
    return TenantDB(_NoDB(), TenantScope(TENANT))  # type: ignore[arg-type]


def test_admins_get_no_visibility_clause() -> None:
    stmt = select_visible(_db(), "d_1", Viewer("k_1", "admin"))
    assert stmt.sql == (
        "SELECT d.id, d.owner_id, d.visibility FROM documents d"
        " WHERE d.tenant_id = ?1 AND d.id = ?2"
    )
    assert stmt.params == (TENANT, "d_1")


def test_students_see_tenant_own_and_their_teachers_student_documents() -> None:
    viewer = Viewer("u_s", "student", ("u_t2", "u_t1"))
    stmt = select_visible(_db(), "d_1", viewer)
    clause, params = viewer.sql("d", 3)
    assert clause.startswith(" AND (") and "d.visibility = 'tenant'" in clause
    assert stmt.sql.endswith(clause)
    assert stmt.params == (TENANT, "d_1", *params)
    assert "u_s" in stmt.params and {"u_t1", "u_t2"} <= set(stmt.params)
