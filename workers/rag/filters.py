"""Search filters, applied in both places they must hold: the Vectorize query and the SQL.

Vectorize filters cannot express OR or array membership, so tags and visibility are resolved to
document ids in D1 first; the resulting `document_id $in [...]` goes into the vector query when
it is small enough for Vectorize's 2 KB filter, and the same condition is always repeated in SQL.

The caller's visibility scope (`kernel.domain.tenancy.Viewer`) is part of every filter, enforced inside
retrieval, never after it: in SQL as one `AND (... OR ...)` clause; in Vectorize, which has no OR,
as one query per disjunct (`vector_filters()`), merged by the search — so a document the caller
may not see never takes part in ranks, scores, counts or cached results.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernel.bindings.ports import D1_MAX_BOUND_PARAMS, SqlValue
from kernel.contracts.api import SearchFilters
from kernel.domain.tenancy import TenantDB, Viewer

VECTOR_FILTER_MAX_IDS = 40  # 40 ids × ~30 bytes stays under Vectorize's 2,048-byte filter limit


@dataclass(frozen=True)
class ResolvedFilter:
    """A filter reduced to SQL on `documents d` plus an optional document-id allowlist."""

    document_ids: tuple[str, ...] | None = None  # None = no id restriction
    tags: tuple[str, ...] = ()
    visibility: tuple[str, ...] = ()
    empty: bool = False  # the filter matches nothing: skip retrieval altogether
    viewer: Viewer | None = None  # None = unrestricted (code acting for the tenant itself)

    @property
    def filtered(self) -> bool:
        """Restricted beyond the caller's visibility (ids, tags or visibility values)."""
        return self.document_ids is not None or bool(self.tags or self.visibility)

    def sql(self, first_param: int) -> tuple[str, list[SqlValue]]:
        clauses: list[str] = []
        params: list[SqlValue] = []

        def marks(values: tuple[str, ...]) -> str:
            start = first_param + len(params)
            params.extend(values)
            return ", ".join(f"?{start + i}" for i in range(len(values)))

        if self.document_ids is not None:
            clauses.append(f"d.id IN ({marks(self.document_ids)})")
        if self.visibility:
            clauses.append(f"d.visibility IN ({marks(self.visibility)})")
        if self.tags:
            clauses.append(
                f"EXISTS (SELECT 1 FROM json_each(d.tags) WHERE json_each.value IN ({marks(self.tags)}))"
            )
        sql = "".join(f" AND {c}" for c in clauses)
        if self.viewer is not None:
            seen, seen_params = self.viewer.sql("d", first_param + len(params))
            sql += seen
            params.extend(seen_params)
        return sql, params

    def vector_filter(self) -> dict[str, object] | None:
        if self.document_ids is not None and len(self.document_ids) <= VECTOR_FILTER_MAX_IDS:
            return {"document_id": {"$in": list(self.document_ids)}}
        return None

    def vector_filters(self) -> list[dict[str, object] | None]:
        """One Vectorize query per entry; their matches are merged (visibility disjuncts)."""
        base = self.vector_filter()
        clauses = self.viewer.vector_clauses() if self.viewer is not None else None
        if clauses is None:
            return [base]
        return [{**(base or {}), **clause} for clause in clauses]


async def resolve(
    db: TenantDB, filters: SearchFilters | None, viewer: Viewer | None = None
) -> ResolvedFilter:
    if filters is None:
        return ResolvedFilter(viewer=viewer)
    base = ResolvedFilter(
        document_ids=tuple(sorted(set(filters.document_ids))) if filters.document_ids else None,
        tags=tuple(sorted(set(filters.tags or ()))),
        visibility=tuple(sorted(set(filters.visibility or ()))),
        viewer=viewer,
    )
    if not (base.tags or base.visibility):
        return base
    # Resolve tag/visibility conditions to the matching document ids (bounded by the param cap).
    clause, params = base.sql(first_param=3)
    limit = max(1, D1_MAX_BOUND_PARAMS - 10)
    result = await db.execute(
        f"SELECT d.id FROM documents d WHERE d.tenant_id = ?1 AND d.deleted_at IS NULL"
        f" AND d.live_version IS NOT NULL{clause} LIMIT ?2",
        [limit + 1, *params],
    )
    ids = tuple(str(r["id"]) for r in result.rows)
    if not ids:
        return ResolvedFilter(empty=True)
    if len(ids) > limit:
        return base  # too many to list: SQL still enforces it; the vector query over-fetches
    return ResolvedFilter(
        document_ids=ids, tags=base.tags, visibility=base.visibility, viewer=viewer
    )
