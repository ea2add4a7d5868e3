"""Passwords, rate-limit SQL and headers, visibility SQL and filters, CORS origins."""

from __future__ import annotations

import pytest

from gateway import passwords, ratelimit
from gateway.cors import normalize_origin
from gateway.users import find_refresh, rotate_refresh
from kernel.domain.tenancy import TenantDB, TenantScope, Viewer
from rag.filters import ResolvedFilter

TENANT = "t_" + "a" * 24


def tdb() -> TenantDB:
    return TenantDB(object(), TenantScope(TENANT))  # type: ignore[arg-type]


def test_password_hash_round_trip_and_format() -> None:
    stored = passwords.hash_password("correct horse battery", 1000)
    algorithm, iterations, salt, digest = stored.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000") and salt and digest
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)
    assert stored != passwords.hash_password("correct horse battery", 1000)  # salted
    assert passwords.needs_rehash(stored, passwords.DEFAULT_ITERATIONS)
    assert not passwords.verify_password("x", "md5$1$abc$def")
    assert not passwords.verify_password("x", "garbage")


def test_default_iterations_are_current() -> None:
    assert passwords.DEFAULT_ITERATIONS >= 600_000


def test_rate_limit_sql_is_one_atomic_upsert() -> None:
    window = ratelimit.Window("search", "user", "key_1", 5, 60)
    stmt = ratelimit.count_hit(tdb(), window, 120)
    assert stmt.sql.startswith("INSERT INTO rate_counters")
    assert "ON CONFLICT (tenant_id, bucket, window_start) DO UPDATE SET hits = hits + 1" in stmt.sql
    assert stmt.sql.endswith("RETURNING hits")
    assert stmt.params == (TENANT, "search:user:key_1", 120)
    assert window.start(179.9) == 120 and window.start(180) == 180


def test_rate_limit_headers_name_the_tightest_window() -> None:
    user = ratelimit.Window("answer", "user", "u", 3, 3600)
    tenant = ratelimit.Window("answer", "tenant", "*", 100, 3600)
    ok = [ratelimit.Decision(user, 2, 50), ratelimit.Decision(tenant, 7, 50)]
    headers = ratelimit.headers(ok)
    assert headers["ratelimit-limit"] == "3" and headers["ratelimit-remaining"] == "1"
    assert headers["ratelimit-reset"] == "50" and "retry-after" not in headers
    refused = ratelimit.headers([ratelimit.Decision(user, 4, 50)])
    assert refused["retry-after"] == "50" and refused["ratelimit-remaining"] == "0"


def test_rate_limit_override() -> None:
    limits = ratelimit.load_limits('{"answer": {"user": [2, 10]}}')
    assert limits["answer"]["user"] == (2, 10)
    assert limits["answer"]["tenant"] == ratelimit.DEFAULT_LIMITS["answer"]["tenant"]


def test_viewer_sql_and_vector_clauses() -> None:
    admin = Viewer("key_1", "admin")
    assert admin.sql("d", 5) == ("", []) and admin.vector_clauses() is None
    assert admin.cache_scope() == "all"
    student = Viewer("u_s", "student", ("u_t2", "u_t1"))
    sql, params = student.sql("d", 5)
    assert sql == (
        " AND (d.visibility = 'tenant' OR d.owner_id = ?5"
        " OR (d.visibility = 'students' AND d.owner_id IN (?6, ?7)))"
    )
    assert params == ["u_s", "u_t1", "u_t2"]
    assert student.vector_clauses() == [
        {"visibility": {"$eq": "tenant"}},
        {"owner_id": {"$eq": "u_s"}},
        {"visibility": {"$eq": "students"}, "owner_id": {"$in": ["u_t1", "u_t2"]}},
    ]
    teacher = Viewer("u_t1", "teacher")
    assert teacher.sql("d", 2) == (" AND (d.visibility = 'tenant' OR d.owner_id = ?2)", ["u_t1"])
    # No principal (a request the gateway did not attribute): tenant-visible documents only.
    assert Viewer("", "").sql("d", 2) == (" AND (d.visibility = 'tenant')", [])
    # Different scopes never share a cache entry; the same scope does.
    assert student.cache_scope() != Viewer("u_s", "student", ("u_t1",)).cache_scope()
    assert student.cache_scope() == Viewer("u_s", "student", ("u_t1", "u_t2")).cache_scope()


def test_resolved_filter_combines_ids_and_visibility() -> None:
    where = ResolvedFilter(document_ids=("d_1",), viewer=Viewer("u_t", "teacher"))
    assert where.vector_filters() == [
        {"document_id": {"$in": ["d_1"]}, "visibility": {"$eq": "tenant"}},
        {"document_id": {"$in": ["d_1"]}, "owner_id": {"$eq": "u_t"}},
    ]
    sql, params = where.sql(first_param=4)
    assert sql == " AND d.id IN (?4) AND (d.visibility = 'tenant' OR d.owner_id = ?5)"
    assert params == ["d_1", "u_t"]
    assert ResolvedFilter(viewer=Viewer("k", "admin")).vector_filters() == [None]


def test_scope_from_request_reads_the_viewer() -> None:
    from kernel.domain.tenancy import scope_from_request
    from kernel.runtime.http import Request

    request = Request(
        "POST",
        "https://rag.internal/search",
        {
            "x-edgerag-tenant": TENANT,
            "x-edgerag-principal": "u_s",
            "x-edgerag-role": "student",
            "x-edgerag-teachers": "u_t1,u_t2",
        },
    )
    scope = scope_from_request(request)
    assert scope.viewer == Viewer("u_s", "student", ("u_t1", "u_t2"))
    anonymous = scope_from_request(Request("GET", "https://x/", {"x-edgerag-tenant": TENANT}))
    assert anonymous.viewer is not None and not anonymous.viewer.unrestricted


def test_refresh_sql() -> None:
    assert find_refresh("h").params == ("h",)
    stmt = rotate_refresh(tdb(), "rt_1")
    assert "rotated_at IS NULL AND revoked_at IS NULL" in stmt.sql
    assert stmt.params == (TENANT, "rt_1")


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com/", "https://app.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
    ],
)
def test_origins_are_normalized(origin: str, expected: str) -> None:
    assert normalize_origin(origin) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "https://*.example.com",
        "null",
        "ftp://x.com",
        "https://x.com/path",
        "https://u:p@x.com",
    ],
)
def test_wildcards_and_non_origins_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(bad)


def test_rate_limit_fields_follow_the_ietf_draft() -> None:
    """RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers-10): one item per
    window, named by class and scope only; the older three fields for the tightest window."""
    user = ratelimit.Window("search", "user", "u_secret", 120, 60)
    tenant = ratelimit.Window("search", "tenant", "t_1", 3000, 60)
    decisions = [ratelimit.Decision(user, 121, 17), ratelimit.Decision(tenant, 700, 17)]
    fields = ratelimit.headers(decisions)
    assert fields["ratelimit-policy"] == '"search-user";q=120;w=60, "search-tenant";q=3000;w=60'
    assert fields["ratelimit"] == '"search-user";r=0;t=17, "search-tenant";r=2300;t=17'
    assert (fields["ratelimit-limit"], fields["ratelimit-remaining"]) == ("120", "0")
    assert fields["retry-after"] == "17"  # the refusing window
    assert "u_secret" not in " ".join(fields.values())
