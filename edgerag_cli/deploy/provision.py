"""Resources and migrations, idempotently: look first, create only what is missing.

Order matters for Vectorize: metadata indexes are created right after the index and before any
Worker is deployed, because Vectorize filters only on indexed properties and only for vectors
written after the index exists (docs/deploy.md). An index that already holds vectors and lacks
one is reported: those vectors stay unfilterable on it until re-ingested.

Migrations are tracked exactly as `wrangler d1 migrations apply` tracks them (the same
`d1_migrations` table, the same statements), so either tool can take over from the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgerag_cli.deploy import repo
from edgerag_cli.deploy.cloudflare import Cloudflare, CloudflareError
from edgerag_cli.deploy.config import ResourceIds
from edgerag_cli.deploy.manifest import Env, Stack

# wrangler's own statements (wrangler-dist: getCreateMigrationsTableQuery, buildMigrationQuery)
MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS "d1_migrations"(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);"""
APPLIED = 'SELECT name FROM "d1_migrations" ORDER BY id'
HAS_TABLE = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'd1_migrations'"


class ProvisionError(Exception):
    pass


@dataclass
class Observed:
    """What exists for one stack and environment (read-only)."""

    d1: dict[str, Any] | None = None
    kv: dict[str, Any] | None = None
    r2: dict[str, Any] | None = None
    vectorize: dict[str, Any] | None = None
    metadata_indexes: dict[str, str] = field(default_factory=dict)

    @property
    def ids(self) -> ResourceIds:
        d1 = str(self.d1["uuid"]) if self.d1 else None
        kv = str(self.kv["id"]) if self.kv else None
        return ResourceIds(d1, kv)


def observe(cf: Cloudflare, stack: Stack, env: Env) -> Observed:
    account = stack.account.account_id
    seen = Observed(
        d1=cf.find_d1(account, stack.resource("d1", env)),
        kv=cf.find_kv(account, stack.resource("kv", env)),
        r2=cf.get_bucket(account, stack.resource("r2", env)),
        vectorize=cf.get_index(account, stack.resource("vectorize", env)),
    )
    if seen.vectorize is not None:
        seen.metadata_indexes = cf.metadata_indexes(account, stack.resource("vectorize", env))
    return seen


def ensure(cf: Cloudflare, source: repo.Repo, stack: Stack, env: Env) -> tuple[Observed, list[str]]:
    """Create what `observe` did not find. Returns what exists now and what was created."""
    account = stack.account.account_id
    names = {kind: stack.resource(kind, env) for kind in ("d1", "kv", "r2", "vectorize")}
    seen = observe(cf, stack, env)
    created: list[str] = []
    if seen.d1 is None:
        seen.d1 = _create_or_find(
            lambda: cf.create_d1(account, names["d1"]), lambda: cf.find_d1(account, names["d1"])
        )
        created.append(f"D1 database {names['d1']}")
    if seen.kv is None:
        seen.kv = _create_or_find(
            lambda: cf.create_kv(account, names["kv"]), lambda: cf.find_kv(account, names["kv"])
        )
        created.append(f"KV namespace {names['kv']}")
    if seen.r2 is None:
        seen.r2 = _create_or_find(
            lambda: cf.create_bucket(account, names["r2"]),
            lambda: cf.get_bucket(account, names["r2"]),
        )
        created.append(f"R2 bucket {names['r2']}")
    spec = source.vectorize
    fresh = seen.vectorize is None
    if fresh:

        def create() -> dict[str, Any]:
            cf.create_index(account, names["vectorize"], spec.dimensions, spec.metric)
            return cf.get_index(account, names["vectorize"]) or {}

        seen.vectorize = _create_or_find(create, lambda: cf.get_index(account, names["vectorize"]))
        created.append(f"Vectorize index {names['vectorize']} ({spec.dimensions}, {spec.metric})")
    else:
        config = seen.vectorize.get("config") if seen.vectorize else None
        have = (config or {}) if isinstance(config, dict) else {}
        if (have.get("dimensions"), have.get("metric")) != (spec.dimensions, spec.metric):
            # An index's dimensions and metric are fixed at creation: it must be replaced.
            raise ProvisionError(
                f"Vectorize index {names['vectorize']} is {have.get('dimensions')}/"
                f"{have.get('metric')}, the code needs {spec.dimensions}/{spec.metric}: create a"
                " new index (new name in the manifest) and re-ingest"
            )
    for prop, kind in spec.metadata_indexes:
        current = seen.metadata_indexes.get(prop)
        if current == kind:
            continue
        if current is not None:
            raise ProvisionError(
                f"metadata index {prop} on {names['vectorize']} is {current}, the code needs"
                f" {kind}: delete it and re-ingest (vectors keep the old type)"
            )
        cf.create_metadata_index(account, names["vectorize"], prop, kind)
        seen.metadata_indexes[prop] = kind
        note = "" if fresh else " — vectors inserted before now are not filterable on it"
        created.append(f"metadata index {names['vectorize']}.{prop} ({kind}){note}")
    return seen, created


Lookup = Callable[[], dict[str, Any] | None]


def _create_or_find(create: Lookup, find: Lookup) -> dict[str, Any]:
    """A create that failed because an earlier (retried, or concurrent) attempt succeeded is
    fine: read it back instead of failing the run."""
    try:
        found = create()
    except CloudflareError as exc:
        if exc.status not in (400, 409):
            raise
        again = find()
        if not again:
            raise
        return dict(again)
    return dict(found or find() or {})


def applied_migrations(
    cf: Cloudflare, account: str, database_id: str, *, create: bool = False
) -> list[str]:
    """Names in d1_migrations, oldest first. Read-only unless `create` (the migrate step makes
    the table as wrangler does; drift only looks)."""
    if create:
        cf.d1_query(account, database_id, MIGRATIONS_TABLE, what="create d1_migrations")
    else:
        [probe] = cf.d1_query(account, database_id, HAS_TABLE, what="look for d1_migrations")
        if not probe.get("results"):
            return []
    [result] = cf.d1_query(account, database_id, APPLIED, what="list applied migrations")
    return [str(row["name"]) for row in result.get("results") or []]


def pending(source: repo.Repo, applied: list[str]) -> list[str]:
    done = set(applied)
    return [name for name in source.migration_names() if name not in done]


def migrate(cf: Cloudflare, source: repo.Repo, account: str, database_id: str) -> list[str]:
    """Apply the missing migrations in order, each with its d1_migrations row in one batch
    (as wrangler does), and stop at the first failure."""
    todo = pending(source, applied_migrations(cf, account, database_id, create=True))
    files = {p.name: p for p in source.migrations}
    for name in todo:
        sql = files[name].read_text(encoding="utf-8")
        quoted = name.replace("'", "''")
        statement = f"{sql}\nINSERT INTO \"d1_migrations\" (name)\nvalues ('{quoted}');"
        cf.d1_query(account, database_id, statement, what=f"apply migration {name}")
    return todo
