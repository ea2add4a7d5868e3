"""Per-stack wrangler configs, generated from the checked-in ones.

Everything the checked-in config says is kept (build command, compatibility date and flags,
crons, [assets], observability, ...) except what makes a deployment a tenant's:

- `name` and every service binding's target get the stack and environment (`SELF` included,
  so ingest's follow-up invocations stay inside the stack);
- D1 / KV / R2 / Vectorize bindings point at the stack's resources (real ids once known);
- the gateway gets the custom domain as its route;
- vars: the checked-in ones, then those derived from the manifest, then the manifest's own;
- relative paths (main, base_dir, migrations_dir, watch_dir, assets.directory) are rewritten
  so they resolve to the same files from `.wrangler/deploy/<stack>/<env>/`, and the build step
  links the vendored `python_modules/` next to the generated file (where wrangler looks).
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgerag_cli.deploy import repo
from edgerag_cli.deploy.manifest import SECRET_LIKE, Deployment, Env, Stack

PLACEHOLDER_D1 = "00000000-0000-0000-0000-000000000000"  # as in the checked-in configs
PLACEHOLDER_KV = "00000000000000000000000000000000"
OUT_DIR = Path(".wrangler/deploy")
_STAGE = re.compile(r"(vendor_pyodide_wheels\.py stage )([^\s;&|]+)")


@dataclass(frozen=True)
class ResourceIds:
    """Ids Cloudflare assigns (R2 buckets and Vectorize indexes are bound by name)."""

    d1: str | None = None
    kv: str | None = None

    @property
    def complete(self) -> bool:
        return self.d1 is not None and self.kv is not None


@dataclass(frozen=True)
class Generated:
    worker: str
    script: str  # the Worker's name on Cloudflare
    path: Path  # relative to the repo root
    data: dict[str, Any]


def out_dir(stack: Stack, env: Env) -> Path:
    return OUT_DIR / stack.name / env


def derived_vars(stack: Stack, env: Env, worker: str) -> dict[str, str]:
    """The vars the manifest implies for `worker` (see repo.MANAGED_VARS for who reads each)."""
    d: Deployment = stack.deployment
    values: dict[str, str] = {
        "EDGERAG_LLM_PROVIDERS": ",".join(d.llm_providers),
        "EDGERAG_R2_ENDPOINT": f"https://{stack.account.account_id}.r2.cloudflarestorage.com",
        "EDGERAG_R2_BUCKET": stack.resource("r2", env),  # direct uploads sign for this bucket
    }
    if d.limits.max_upload_bytes is not None:
        values["EDGERAG_MAX_UPLOAD_BYTES"] = str(d.limits.max_upload_bytes)
    if d.limits.rate_limits:
        values["EDGERAG_RATE_LIMITS"] = json.dumps(d.limits.rate_limits, sort_keys=True)
    if d.limits.rate_ceilings:
        values["EDGERAG_RATE_CEILINGS"] = json.dumps(d.limits.rate_ceilings, sort_keys=True)
    if d.limits.daily_token_budget is not None:
        values["EDGERAG_DAILY_TOKEN_BUDGET"] = str(d.limits.daily_token_budget)
    return {k: v for k, v in values.items() if worker in repo.MANAGED_VARS[k]}


def worker_vars(stack: Stack, env: Env, worker: str, checked_in: dict[str, Any]) -> dict[str, Any]:
    return {
        **checked_in,
        **derived_vars(stack, env, worker),
        **stack.deployment.vars.get(worker, {}),  # type: ignore[call-overload]
    }


def generate(
    source: repo.Repo, stack: Stack, env: Env, ids: ResourceIds = ResourceIds()
) -> list[Generated]:
    """One config per Worker, in deploy order."""
    where = out_dir(stack, env)
    scripts = {c.name: stack.worker_name(w, env) for w, c in source.configs.items()}
    out = []
    for worker, cfg in source.configs.items():
        data = copy.deepcopy(cfg.data)
        data.pop("env", None)  # wrangler environments: the stack and env are the names here
        data["name"] = scripts[cfg.name]
        _rewrite_paths(data, source.root, source.root / cfg.path.parent, source.root / where)
        for db in data.get("d1_databases", []):
            db["database_name"] = stack.resource("d1", env)
            db["database_id"] = ids.d1 or PLACEHOLDER_D1
            db.pop("preview_database_id", None)
        for kv in data.get("kv_namespaces", []):
            kv["id"] = ids.kv or PLACEHOLDER_KV
            kv.pop("preview_id", None)
        for bucket in data.get("r2_buckets", []):
            bucket["bucket_name"] = stack.resource("r2", env)
            bucket.pop("preview_bucket_name", None)
        for index in data.get("vectorize", []):
            index["index_name"] = stack.resource("vectorize", env)
        for svc in data.get("services", []):
            svc["service"] = scripts[svc["service"]]  # repo.load_repo checked every target
        variables = worker_vars(stack, env, worker, data.get("vars", {}))
        if variables:
            data["vars"] = variables
        if worker == repo.PUBLIC_WORKER:
            data.pop("route", None)
            data["routes"] = [{"pattern": stack.domain(env), "custom_domain": True}]
        out.append(Generated(worker, data["name"], where / f"{worker}.toml", data))
    return out


def _rewrite_paths(data: dict[str, Any], root: Path, src: Path, dst: Path) -> None:
    def moved(value: str) -> str:
        return os.path.relpath((src / value).resolve(), dst.resolve())

    for key in ("main", "base_dir", "tsconfig"):
        if isinstance(data.get(key), str):
            data[key] = moved(data[key])
    build = data.get("build")
    if isinstance(build, dict):
        watch = build.get("watch_dir")
        if isinstance(watch, str):
            build["watch_dir"] = moved(watch)
        elif isinstance(watch, list):
            build["watch_dir"] = [moved(w) for w in watch]
        command = build.get("command")
        if isinstance(command, str):
            # The build links python_modules/ beside the config wrangler reads: the generated one.
            link_dir = os.path.relpath(dst.resolve(), root.resolve())
            build["command"] = _STAGE.sub(lambda m: m[1] + link_dir, command)
    assets = data.get("assets")
    if isinstance(assets, dict) and isinstance(assets.get("directory"), str):
        assets["directory"] = moved(assets["directory"])
    for db in data.get("d1_databases", []):
        if isinstance(db.get("migrations_dir"), str):
            db["migrations_dir"] = moved(db["migrations_dir"])


def build_problems(source: repo.Repo) -> list[str]:
    """Checked-in configs the deploy must not copy: a build command that no longer stages
    python_modules (Workers without pydantic), or a secret kept in [vars]."""
    problems = []
    for cfg in source.configs.values():
        secretish = [k for k in cfg.data.get("vars", {}) if SECRET_LIKE.search(k)]
        if secretish:
            problems.append(f"{cfg.path}: [vars] {secretish} look like secrets: never vars")
        command = cfg.data.get("build", {}).get("command")
        if isinstance(command, str) and not _STAGE.search(command):
            problems.append(
                f"{cfg.path}: build.command does not run `scripts/vendor_pyodide_wheels.py stage"
                " DIR`; edgerag_cli/deploy/config.py must learn the new build step"
            )
    return problems


def write(generated: list[Generated], root: Path, header: str) -> None:
    for g in generated:
        path = root / g.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{header}\n{dumps(g.data)}", encoding="utf-8")


# --- TOML -----------------------------------------------------------------------------------
# wrangler configs are plain data: strings, numbers, booleans, arrays, tables. A JSON string is
# a valid TOML basic string (the same escapes), so no TOML library is needed to write one.
def dumps(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, datetime.date | datetime.datetime | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    for k, v in data.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in data.items():
        if isinstance(v, dict):
            name = ".".join(_key(p) for p in [*path, k])
            lines += ["", f"[{name}]"]
            _table(v, [*path, k], lines)
        elif _is_table_array(v):
            name = ".".join(_key(p) for p in [*path, k])
            for item in v:
                lines += ["", f"[[{name}]]"]
                _table(item, [*path, k], lines)
