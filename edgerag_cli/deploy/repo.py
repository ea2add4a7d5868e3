"""What the checked-in tree says a deployment needs, read from the files themselves.

- Workers and their bindings: the four wrangler.toml files (gateway at the root, the others in
  workers/<name>/). The deploy order follows their service bindings (a binding must name a
  Worker that already exists), so adding a binding can never deploy in the wrong order.
- The Vectorize index (dimensions, metric) and its metadata indexes: the `wrangler vectorize`
  lines in the configs' comments, the one place they are written down for the hand deploy.
- Migrations: migrations/*.sql, applied in file-name order (as `wrangler d1 migrations apply`).
- Secrets and the vars the deploy sets: tables below, taken from the code that reads them
  (tests/unit/test_deploy_config.py checks each name against workers/).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = ROOT / "migrations"
CONFIG_FILES = {
    "gateway": Path("wrangler.toml"),
    "rag": Path("workers/rag/wrangler.toml"),
    "ingest": Path("workers/ingest/wrangler.toml"),
    "llm": Path("workers/llm/wrangler.toml"),
}
PUBLIC_WORKER = "gateway"  # the only Worker with a route; every other one is reached by binding

# Binding tables the deploy fills with per-tenant resources: config key -> resource kind.
RESOURCE_TABLES = {
    "d1_databases": "d1",
    "kv_namespaces": "kv",
    "r2_buckets": "r2",
    "vectorize": "vectorize",
}
# Bindings that need no per-tenant resource: kept exactly as the checked-in config says.
PASSTHROUGH_TABLES = frozenset({"ai", "assets", "browser", "version_metadata", "images"})

# Secrets each Worker needs (never vars). The llm Worker also needs one key per external model
# provider in its chain (PROVIDER_SECRETS).
REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {
    # gateway/context.py: operator token (POST /v1/tenants, /metrics), access-token keys
    "gateway": ("EDGERAG_OPERATOR_TOKEN", "EDGERAG_JWT_KEYS", "EDGERAG_JWT_ACTIVE_KID"),
    # ingest/direct.py: the R2 API token that signs direct uploads
    "ingest": ("EDGERAG_R2_ACCESS_KEY_ID", "EDGERAG_R2_SECRET_ACCESS_KEY"),
    "rag": (),
    "llm": (),
}
# Set when the environment has a value, never required: /metrics scraper, analyzer bearer,
# the OTLP collector's headers (kernel/bindings/traces.py, every Worker).
OPTIONAL_SECRETS: dict[str, tuple[str, ...]] = {
    "gateway": ("EDGERAG_METRICS_TOKEN", "EDGERAG_OTLP_HEADERS"),
    "rag": ("EDGERAG_OTLP_HEADERS",),
    "ingest": ("EDGERAG_OTLP_HEADERS",),
    "llm": ("EDGERAG_ANALYZER_TOKEN", "EDGERAG_OTLP_HEADERS"),
}
# llm/providers.py: `{PROVIDER}_API_KEY`; workers-ai uses the AI binding and needs none.
PROVIDERS = ("workers-ai", "anthropic", "dedalus", "openai")
# openai's key is optional when the llm vars set OPENAI_BASE_URL (a local, keyless server).
PROVIDER_SECRETS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "dedalus": "DEDALUS_API_KEY",
    "openai": "OPENAI_API_KEY",
}

# Vars the deploy derives from the manifest, and the Workers that read each one.
MANAGED_VARS: dict[str, tuple[str, ...]] = {
    "EDGERAG_MAX_UPLOAD_BYTES": ("gateway", "ingest"),
    "EDGERAG_RATE_LIMITS": ("gateway",),
    "EDGERAG_RATE_CEILINGS": ("gateway",),
    "EDGERAG_DAILY_TOKEN_BUDGET": ("gateway",),
    "EDGERAG_LLM_PROVIDERS": ("llm",),
    "EDGERAG_R2_ENDPOINT": ("ingest",),
    "EDGERAG_R2_BUCKET": ("ingest",),
}
# gateway/ratelimit.py DEFAULT_LIMITS (classes) and gateway/tenant_limits.py TUNABLE (what a
# tenant's own policy may change); tests keep these in step with the code.
RATE_CLASSES = frozenset(
    {
        "answer",
        "personalize",
        "translate",
        "tts",
        "analysis",
        "feedback",
        "search",
        "ingest",
        "api",
        "status",
        "login",
        "refresh",
    }
)
TUNABLE_CLASSES = frozenset(
    {"answer", "search", "ingest", "api", "personalize", "translate", "tts", "analysis", "feedback"}
)

_VECTORIZE_CREATE = re.compile(
    r"wrangler vectorize create (\S+) --dimensions=(\d+) --metric=([a-z-]+)"
)
_METADATA_INDEX = re.compile(
    r"wrangler vectorize create-metadata-index (\S+) --property-name=(\w+) --type=(string|number|boolean)"
)


class RepoError(Exception):
    """The checked-in configs say something the deploy cannot honour (listed, all of them)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Binding:
    table: str  # the config key: d1_databases, services, ai, ...
    name: str  # the binding name the code reads (DB, KV, LLM, ...)
    target: str | None = None  # checked-in database_name / bucket / index / service


@dataclass(frozen=True)
class VectorizeSpec:
    dimensions: int
    metric: str
    metadata_indexes: tuple[tuple[str, str], ...]  # (property name, type), in config order


@dataclass
class WorkerConfig:
    worker: str  # gateway, rag, ingest, llm
    path: Path  # relative to the repo root
    data: dict[str, Any]
    text: str

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def bindings(self) -> list[Binding]:
        found: list[Binding] = []
        for table in (*RESOURCE_TABLES, "services"):
            for entry in self.data.get(table, []):
                target = entry.get("database_name") or entry.get("bucket_name")
                target = target or entry.get("index_name") or entry.get("service")
                if table == "kv_namespaces":
                    target = entry.get("id")
                found.append(Binding(table, str(entry["binding"]), target))
        for table in sorted(PASSTHROUGH_TABLES):
            entry = self.data.get(table)
            if isinstance(entry, dict) and "binding" in entry:
                found.append(Binding(table, str(entry["binding"])))
        return found

    @property
    def crons(self) -> list[str]:
        return list(self.data.get("triggers", {}).get("crons", []))


@dataclass
class Repo:
    root: Path
    configs: dict[str, WorkerConfig]  # in deploy order
    vectorize: VectorizeSpec
    migrations: list[Path] = field(default_factory=list)

    @property
    def order(self) -> list[str]:
        return list(self.configs)

    def migration_names(self) -> list[str]:
        return [p.name for p in self.migrations]


def load_repo(root: Path = ROOT) -> Repo:
    """Read and check the checked-in configs; every problem is raised at once."""
    problems: list[str] = []
    configs: dict[str, WorkerConfig] = {}
    for worker, rel in CONFIG_FILES.items():
        path = root / rel
        try:
            text = path.read_text(encoding="utf-8")
            configs[worker] = WorkerConfig(worker, rel, tomllib.loads(text), text)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(f"{rel}: cannot read: {exc}")
    if problems:
        raise RepoError(problems)
    problems += _unknown_bindings(configs)
    problems += _one_resource_per_kind(configs)
    order, more = _deploy_order(configs)
    problems += more
    spec, more = _vectorize_spec(configs)
    problems += more
    migrations = sorted((root / "migrations").glob("*.sql"))
    bad = [p.name for p in migrations if not re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", p.name)]
    if bad:
        problems.append(f"migrations/: names wrangler would order differently: {bad}")
    if not migrations:
        problems.append("migrations/: no .sql files")
    if problems or spec is None:
        raise RepoError(problems)
    return Repo(root, {w: configs[w] for w in order}, spec, migrations)


def _unknown_bindings(configs: dict[str, WorkerConfig]) -> list[str]:
    """A binding table the deploy neither provisions nor passes through would deploy a Worker
    bound to the checked-in placeholder resource: refuse it until the deploy learns it."""
    problems = []
    known = set(RESOURCE_TABLES) | PASSTHROUGH_TABLES | {"services", "env"}
    for cfg in configs.values():
        for key, value in cfg.data.items():
            if key in known:
                continue
            # [[queues.producers]] nests its bindings; Durable Objects name theirs `name`.
            if key == "durable_objects" or _has_binding(value):
                problems.append(
                    f"{cfg.path}: [{key}] is a binding the per-tenant deploy does not provision;"
                    " teach edgerag_cli/deploy (repo.py, config.py, provision.py) about it"
                )
    return problems


def _has_binding(value: Any) -> bool:
    if isinstance(value, dict):
        return "binding" in value or any(_has_binding(v) for v in value.values())
    return isinstance(value, list) and any(_has_binding(v) for v in value)


def _one_resource_per_kind(configs: dict[str, WorkerConfig]) -> list[str]:
    """The manifest names one D1 database, KV namespace, bucket and index per deployment: every
    Worker binding a kind must bind the same checked-in resource."""
    problems = []
    for table, kind in RESOURCE_TABLES.items():
        targets = {b.target for c in configs.values() for b in c.bindings if b.table == table}
        if len(targets) > 1:
            problems.append(
                f"[[{table}]]: the configs bind {len(targets)} different {kind} resources"
                f" ({', '.join(sorted(str(t) for t in targets))}); the manifest has one per kind"
            )
    return problems


def _deploy_order(configs: dict[str, WorkerConfig]) -> tuple[list[str], list[str]]:
    """Callees first (a service binding must name an existing Worker); ties keep llm, ingest,
    rag, gateway. SELF bindings point at the Worker itself and impose nothing."""
    by_name = {c.name: w for w, c in configs.items()}
    needs: dict[str, set[str]] = {}
    problems = []
    for worker, cfg in configs.items():
        needs[worker] = set()
        for b in cfg.bindings:
            if b.table != "services" or b.target == cfg.name:
                continue
            if b.target not in by_name:
                problems.append(
                    f"{cfg.path}: service binding {b.name} names {b.target!r},"
                    f" not one of {sorted(by_name)}"
                )
                continue
            needs[worker].add(by_name[b.target])
    order: list[str] = []
    preferred = ["llm", "ingest", "rag", "gateway"]
    while len(order) < len(needs):
        ready = [w for w in preferred if w not in order and needs[w] <= set(order)]
        if not ready:
            left = sorted(set(needs) - set(order))
            problems.append(f"service bindings form a cycle between {left}: no deploy order")
            order += left
            break
        order.append(ready[0])
    return order, problems


def _vectorize_spec(configs: dict[str, WorkerConfig]) -> tuple[VectorizeSpec | None, list[str]]:
    creates: set[tuple[int, str]] = set()
    indexes: dict[str, str] = {}
    problems = []
    for cfg in configs.values():
        if not cfg.data.get("vectorize"):
            continue
        for _, dims, metric in _VECTORIZE_CREATE.findall(cfg.text):
            creates.add((int(dims), metric))
        for _, prop, kind in _METADATA_INDEX.findall(cfg.text):
            if indexes.setdefault(prop, kind) != kind:
                problems.append(
                    f"{cfg.path}: metadata index {prop} is {kind} here, {indexes[prop]} elsewhere"
                )
    if len(creates) != 1:
        problems.append(
            "the configs binding Vectorize must carry exactly one `wrangler vectorize create NAME"
            f" --dimensions=N --metric=M` line in their comments; found {sorted(creates)}"
        )
        return None, problems
    [(dims, metric)] = creates
    return VectorizeSpec(dims, metric, tuple(indexes.items())), problems


def required_secrets(worker: str, providers: Sequence[str], vars_: Mapping[str, str]) -> list[str]:
    """The secret names `worker` must have for this deployment's provider chain."""
    names = list(REQUIRED_SECRETS.get(worker, ()))
    if worker == "llm":
        for provider in providers:
            secret = PROVIDER_SECRETS.get(provider)
            # llm/providers.py: an OpenAI-compatible base URL alone is enough (local servers).
            if secret and not (provider == "openai" and vars_.get("OPENAI_BASE_URL")):
                names.append(secret)
    return names
