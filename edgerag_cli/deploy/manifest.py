"""deploy/tenants.toml: accounts, tenants and what each deployment gets, parsed strictly.

Two plans:

- `dedicated`: the tenant gets its own *stack* per environment — four Workers, a D1 database,
  KV namespace, R2 bucket and Vectorize index, its own custom domain and vars.
- `shared`: the tenant lives on its account's shared stack (`[accounts.<name>.shared]`), one
  per environment, which every shared-plan tenant of that account uses; the code keys every
  row, vector namespace, object and cache key by tenant id, so nothing else is needed to keep
  them apart. A shared tenant's own daily token budget and rate limits are tenant policy
  (`[tenants.<name>.policy]`), set through the deployed gateway's `PATCH /v1/tenants/{id}`.

Every problem is reported at once, each naming the file, the tenant (or account) and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from edgerag_cli.deploy import repo

Env = Literal["dev", "stage", "prod"]
ENVS: tuple[Env, ...] = get_args(Env)
WorkerName = Literal["gateway", "rag", "ingest", "llm"]
Provider = Literal["workers-ai", "anthropic", "dedalus", "openai"]

# pattern -> what a value must be, for the error messages
_HINTS = {
    r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$": "a name: 2-32 of a-z, 0-9 and '-'",
    r"^[A-Z][A-Z0-9_]{0,63}$": "an environment variable name (A-Z, 0-9, _; e.g. CF_TOKEN_X)",
    r"^[A-Z][A-Z0-9_]{0,40}_$": "an environment variable prefix ending in '_' (e.g. ACME_)",
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$": (
        "a lower-case hostname (e.g. rag.example.com)"
    ),
    r"^[0-9a-f]{32}$": "a Cloudflare account id (32 hex digits, dashboard → Account home)",
    r"^t_[A-Za-z0-9]{8,64}$": "a tenant id as POST /v1/tenants returns it (t_...)",
    r"^([a-z0-9-]|\{stack\}|\{env\})+$": "a resource name: a-z, 0-9, '-', {stack}, {env}",
    r"^[a-z_]{2,40}$": "a rate class name (answer, search, ...)",
}
_PATTERNS = list(_HINTS)
Slug = Annotated[str, StringConstraints(pattern=_PATTERNS[0])]
EnvVar = Annotated[str, StringConstraints(pattern=_PATTERNS[1])]
VarName = EnvVar
EnvPrefix = Annotated[str, StringConstraints(pattern=_PATTERNS[2])]
Hostname = Annotated[str, StringConstraints(max_length=253, pattern=_PATTERNS[3])]
AccountId = Annotated[str, StringConstraints(pattern=_PATTERNS[4])]
TenantId = Annotated[str, StringConstraints(pattern=_PATTERNS[5])]
# {stack} and {env} are filled in per deployment; nothing else may be in braces.
NamePattern = Annotated[str, StringConstraints(pattern=_PATTERNS[6])]
RateClass = Annotated[str, StringConstraints(pattern=_PATTERNS[7])]
Count = Annotated[int, Field(ge=1, le=10**9)]
# [count, window seconds], as gateway/ratelimit.py reads EDGERAG_RATE_LIMITS.
Window = Annotated[list[Count], Field(min_length=2, max_length=2)]
RateTable = dict[RateClass, dict[Literal["user", "tenant", "ip", "ip_email"], Window]]

SHARED_STACK_PREFIX = "shared-"
SECRET_LIKE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Limits(Strict):
    """Deployment limits, set as the gateway's and ingest's vars (the code's defaults hold for
    anything left out)."""

    max_upload_bytes: Annotated[int, Field(ge=1024, le=10 * 1024**3)] | None = None
    daily_token_budget: Annotated[int, Field(ge=0, le=10**12)] | None = None  # per tenant
    rate_limits: RateTable = Field(default_factory=dict)  # EDGERAG_RATE_LIMITS
    rate_ceilings: RateTable = Field(default_factory=dict)  # EDGERAG_RATE_CEILINGS


class Resources(Strict):
    """Resource names; `{stack}` and `{env}` are filled in. Defaults: see `Stack.resource`."""

    d1: NamePattern | None = None
    kv: NamePattern | None = None
    r2: NamePattern | None = None
    vectorize: NamePattern | None = None


class Deployment(Strict):
    """What one stack gets: a dedicated tenant's own fields, or an account's shared block."""

    domains: dict[Env, Hostname]  # the gateway's custom domain per environment
    llm_providers: Annotated[list[Provider], Field(min_length=1, max_length=4)] = Field(
        default_factory=lambda: list[Provider](["workers-ai"])
    )
    limits: Limits = Field(default_factory=Limits)
    resources: Resources = Field(default_factory=Resources)
    vars: dict[WorkerName, dict[VarName, str]] = Field(default_factory=dict)
    # Where secret values come from: env var `<prefix><SECRET>` (default: the stack's name).
    secrets_env_prefix: EnvPrefix | None = None


class Account(Strict):
    account_id: AccountId
    api_token_env: EnvVar  # the env var holding this account's scoped API token
    shared: Deployment | None = None  # the shared plan's stack on this account


class Policy(Strict):
    """A shared-plan tenant's own limits (PATCH /v1/tenants/{id}, operator): counts in the
    deployment's windows."""

    daily_token_budget: Annotated[int, Field(ge=0, le=10**12)] | None = None
    rate_limits: dict[RateClass, dict[Literal["user", "tenant"], Count]] = Field(
        default_factory=dict
    )


class TenantBase(Strict):
    plan: Literal["shared", "dedicated"]
    account: Slug
    environments: Annotated[list[Env], Field(min_length=1, max_length=3)]
    description: str | None = None


class DedicatedTenant(TenantBase, Deployment):
    plan: Literal["dedicated"]


class SharedTenant(TenantBase):
    plan: Literal["shared"]
    policy: Policy = Field(default_factory=Policy)
    tenant_ids: dict[Env, TenantId] = Field(default_factory=dict)  # once POST /v1/tenants ran


Tenant = DedicatedTenant | SharedTenant


class ManifestError(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems))


@dataclass(frozen=True)
class Stack:
    """One deployment unit: the Workers and resources of a dedicated tenant, or of an
    account's shared plan. Names carry the stack and the environment, so no two deployments
    (or environments) ever share a Worker or a resource by accident."""

    name: str
    account_name: str
    account: Account
    deployment: Deployment
    tenants: tuple[str, ...]
    environments: tuple[Env, ...]

    @property
    def shared(self) -> bool:
        return self.name.startswith(SHARED_STACK_PREFIX)

    def worker_name(self, worker: str, env: Env) -> str:
        return f"edgerag-{self.name}-{env}-{worker}"

    def resource(self, kind: str, env: Env) -> str:
        defaults = {
            "d1": "edgerag-{stack}-{env}",
            "kv": "edgerag-{stack}-{env}-cache",
            "r2": "edgerag-{stack}-{env}-originals",
            "vectorize": "edgerag-{stack}-{env}-chunks",
        }
        pattern = getattr(self.deployment.resources, kind) or defaults[kind]
        return str(pattern).replace("{stack}", self.name).replace("{env}", env)

    def domain(self, env: Env) -> str:
        return self.deployment.domains[env]

    @property
    def secrets_prefix(self) -> str:
        return self.deployment.secrets_env_prefix or self.name.upper().replace("-", "_") + "_"

    def secret_env(self, secret: str) -> str:
        return f"{self.secrets_prefix}{secret}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    accounts: dict[str, Account]
    tenants: dict[str, Tenant]

    def stack_of(self, tenant: str) -> Stack:
        return self.stacks()[stack_name(tenant, self.tenants[tenant])]

    def stacks(self) -> dict[str, Stack]:
        found: dict[str, list[str]] = {}
        for name, tenant in self.tenants.items():
            found.setdefault(stack_name(name, tenant), []).append(name)
        stacks = {}
        for name, members in found.items():
            first = self.tenants[members[0]]
            account = self.accounts[first.account]
            deployment = first if isinstance(first, DedicatedTenant) else account.shared
            assert deployment is not None  # checked by _cross_check
            envs = {e for m in members for e in self.tenants[m].environments}
            stacks[name] = Stack(
                name,
                first.account,
                account,
                deployment,
                tuple(members),
                tuple(e for e in ENVS if e in envs),
            )
        return stacks


def stack_name(tenant: str, spec: Tenant) -> str:
    return tenant if isinstance(spec, DedicatedTenant) else SHARED_STACK_PREFIX + spec.account


def load_manifest(path: Path) -> Manifest:
    label = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError([f"{label}: cannot read: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError([f"{label}: not TOML: {exc}"]) from exc
    return parse_manifest(raw, label, path)


def parse_manifest(raw: dict[str, Any], label: str, path: Path | None = None) -> Manifest:
    problems: list[str] = []
    unknown = sorted(set(raw) - {"version", "accounts", "tenants"})
    if unknown:
        problems.append(f"{label}: unknown top-level keys {unknown} (accounts, tenants)")
    if raw.get("version") != 1:
        problems.append(f"{label}: version: must be 1")
    accounts: dict[str, Account] = {}
    invalid: set[str] = set()  # named, but wrong: their tenants are not "unknown account" too
    for name, body in _tables(raw, "accounts", label, problems):
        model = _validate(Account, body, f"{label}: accounts.{name}", problems)
        if model is not None:
            accounts[name] = model
        else:
            invalid.add(name)
    tenants: dict[str, Tenant] = {}
    for name, body in _tables(raw, "tenants", label, problems):
        where = f"{label}: tenants.{name}"
        plan = body.get("plan")
        cls: type[Tenant]
        if plan == "dedicated":
            cls = DedicatedTenant
        elif plan == "shared":
            cls = SharedTenant
            problems += _misplaced_on_shared(body, where, str(body.get("account")))
            body = {k: v for k, v in body.items() if k not in Deployment.model_fields}
        else:
            problems.append(f"{where}.plan: must be 'shared' or 'dedicated', got {plan!r}")
            continue
        model = _validate(cls, body, where, problems)
        if model is not None:
            tenants[name] = model
    if not tenants and not problems:
        problems.append(f"{label}: no tenants")
    problems += _cross_check(label, accounts, tenants, invalid)
    if not problems:  # names can only be compared once every stack resolves
        problems += _unique_names(label, accounts, tenants)
    if problems:
        raise ManifestError(problems)
    return Manifest(path or Path(label), accounts, tenants)


def _tables(
    raw: dict[str, Any], key: str, label: str, problems: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    section = raw.get(key, {})
    if not isinstance(section, dict):
        problems.append(f"{label}: {key}: must be a table of tables")
        return []
    out = []
    for name, body in section.items():
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", name):
            problems.append(
                f"{label}: {key}.{name}: names are 2-32 of a-z, 0-9 and '-' (they go into"
                " Worker and resource names)"
            )
        elif not isinstance(body, dict):
            problems.append(f"{label}: {key}.{name}: must be a table")
        else:
            out.append((name, body))
    return out


def _misplaced_on_shared(body: dict[str, Any], where: str, account: str) -> list[str]:
    """Deployment fields on a shared tenant would silently do nothing: say where they go."""
    problems = []
    for key in sorted(set(body) & set(Deployment.model_fields)):
        place = f"it is the shared stack's: [accounts.{account}.shared]"
        if key == "limits":
            place += "; the tenant's own budget and rate limits go in its [policy] table"
        problems.append(f"{where}.{key}: a shared-plan tenant has no {key} of its own ({place})")
    return problems


def _validate(
    cls: type[Strict], body: dict[str, Any], where: str, problems: list[str]
) -> Any | None:
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "missing":
                message = "required"
            elif err["type"] == "string_pattern_mismatch":
                pattern = str((err.get("ctx") or {}).get("pattern"))
                message = f"{err['input']!r} is not {_HINTS.get(pattern, 'valid: ' + pattern)}"
            problems.append(f"{where}.{loc}: {message}")
        return None


def _cross_check(
    label: str, accounts: dict[str, Account], tenants: dict[str, Tenant], invalid: set[str]
) -> list[str]:
    problems: list[str] = []
    for name, spec in accounts.items():
        if spec.shared is not None:
            problems += _check_deployment(f"{label}: accounts.{name}.shared", spec.shared)
    for name, tenant in tenants.items():
        where = f"{label}: tenants.{name}"
        account = accounts.get(tenant.account)
        if account is None:
            if tenant.account not in invalid:
                problems.append(f"{where}.account: no [accounts.{tenant.account}] in the manifest")
            continue
        if len(set(tenant.environments)) != len(tenant.environments):
            problems.append(f"{where}.environments: listed twice: {tenant.environments}")
        if isinstance(tenant, DedicatedTenant):
            if name.startswith(SHARED_STACK_PREFIX):
                problems.append(f"{where}: names starting with 'shared-' are the shared stacks'")
            problems += _check_deployment(where, tenant, tenant.environments)
            continue
        if account.shared is None:
            problems.append(
                f"{where}.plan: shared, but [accounts.{tenant.account}.shared] is missing"
            )
            continue
        missing = [e for e in tenant.environments if e not in account.shared.domains]
        if missing:
            problems.append(
                f"{where}.environments: accounts.{tenant.account}.shared.domains has no {missing}"
            )
        for env in tenant.tenant_ids:
            if env not in tenant.environments:
                problems.append(f"{where}.tenant_ids.{env}: not one of its environments")
        for cls in tenant.policy.rate_limits:
            if cls not in repo.TUNABLE_CLASSES:
                problems.append(
                    f"{where}.policy.rate_limits.{cls}: not a class a tenant may tune"
                    f" ({', '.join(sorted(repo.TUNABLE_CLASSES))})"
                )
    return problems


def _check_deployment(where: str, d: Deployment, envs: list[Env] | None = None) -> list[str]:
    problems = []
    for env in envs or []:
        if env not in d.domains:
            problems.append(f"{where}.domains.{env}: required (the gateway's custom domain)")
    if len(set(d.llm_providers)) != len(d.llm_providers):
        problems.append(f"{where}.llm_providers: listed twice: {d.llm_providers}")
    for field in ("rate_limits", "rate_ceilings"):
        for cls in getattr(d.limits, field):
            if cls not in repo.RATE_CLASSES:
                problems.append(
                    f"{where}.limits.{field}.{cls}: unknown rate class"
                    f" ({', '.join(sorted(repo.RATE_CLASSES))})"
                )
    for cls, scopes in d.limits.rate_limits.items():
        for scope, (count, window) in scopes.items():
            ceiling = d.limits.rate_ceilings.get(cls, {}).get(scope)
            if ceiling is not None and (count > ceiling[0] or window != ceiling[1]):
                problems.append(
                    f"{where}.limits.rate_limits.{cls}.{scope}: {[count, window]} is above the"
                    f" ceiling {ceiling} (or in another window)"
                )
    for worker, values in d.vars.items():
        for var in values:
            if SECRET_LIKE.search(var):
                problems.append(
                    f"{where}.vars.{worker}.{var}: looks like a secret; secrets come from the"
                    " environment (see docs/operations.md), never vars"
                )
            if var in repo.MANAGED_VARS:
                problems.append(
                    f"{where}.vars.{worker}.{var}: set by the deploy from llm_providers, limits"
                    " and resources; change those instead"
                )
    return problems


def _unique_names(
    label: str, accounts: dict[str, Account], tenants: dict[str, Tenant]
) -> list[str]:
    """No two stacks (or environments) may share a domain, a Worker or a resource."""
    manifest = Manifest(Path(label), accounts, tenants)
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for stack in manifest.stacks().values():
        for env in stack.environments:
            owner = f"{stack.name}/{env}"
            claims = [("domain", stack.domain(env))] if env in stack.deployment.domains else []
            for kind in ("d1", "kv", "r2", "vectorize"):
                claims.append((f"{kind}@{stack.account.account_id}", stack.resource(kind, env)))
            claims += [("worker", stack.worker_name(w, env)) for w in repo.CONFIG_FILES]
            for kind, value in claims:
                other = seen.setdefault((kind, value), owner)
                if other != owner:
                    what = kind.split("@")[0]
                    problems.append(
                        f"{label}: {owner} and {other} would share the {what} {value!r}"
                        " (use {env} and {stack} in resource names)"
                    )
                if what_invalid := _invalid_name(kind.split("@")[0], value):
                    problems.append(f"{label}: {owner}: {what_invalid}")
    return problems


def _invalid_name(kind: str, value: str) -> str | None:
    # Cloudflare's rules: R2 buckets 3-63 of a-z0-9-, Worker names ≤63, Vectorize index names
    # ^[a-z]+[a-z0-9_-]*[a-z0-9]+$ (the API's pattern).
    limits = {"worker": 63, "r2": 63, "vectorize": 63, "d1": 63, "kv": 100}
    if kind in limits and len(value) > limits[kind]:
        return f"{kind} name {value!r} is longer than {limits[kind]} characters"
    if kind == "vectorize" and not re.fullmatch(r"[a-z][a-z0-9_-]*[a-z0-9]", value):
        return f"vectorize index name {value!r} must start with a letter"
    return None
