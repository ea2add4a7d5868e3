"""One deploy of one stack in one environment, step by step.

validate (offline, then read-only API calls) → provision → migrate → config → deploy (Workers
in dependency order, each followed by its missing secrets) → smoke (`GET /health`) → policy
(shared-plan tenants: PATCH /v1/tenants/{id}). A failed step skips the rest of its stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from edgerag_cli.deploy import config, provision, repo
from edgerag_cli.deploy.cloudflare import Cloudflare, CloudflareError
from edgerag_cli.deploy.manifest import Env, Manifest, SharedTenant, Stack
from edgerag_cli.deploy.report import StackRun, Step
from edgerag_cli.deploy.runner import Runner, wrangler_argv, wrangler_env

SMOKE_ATTEMPTS = 6
SMOKE_DELAY_S = 10.0  # a new custom domain needs a moment for its certificate
OUTPUT_TAIL = 2000


@dataclass
class Context:
    repo: repo.Repo
    manifest: Manifest
    environ: Mapping[str, str]
    runner: Runner
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    update_secrets: bool = False  # also re-put secrets the Workers already have (rotation)

    def token(self, stack: Stack) -> str | None:
        return self.environ.get(stack.account.api_token_env) or None

    def cloudflare(self, stack: Stack) -> Cloudflare:
        token = self.token(stack)
        if token is None:
            raise CloudflareError("credentials", f"${stack.account.api_token_env} is not set")
        return Cloudflare(
            token,
            token_label=f"${stack.account.api_token_env}",
            transport=self.transport,
            sleep=self.sleep,
        )

    def http(self) -> httpx.Client:
        return httpx.Client(
            transport=self.transport, timeout=30.0, trust_env=self.transport is None
        )


@dataclass(frozen=True)
class SecretNeed:
    worker: str
    script: str
    name: str
    env_var: str
    required: bool
    value: str | None = field(default=None, repr=False)  # never printed


def secret_needs(ctx: Context, stack: Stack, env: Env) -> list[SecretNeed]:
    needs = []
    providers = list(stack.deployment.llm_providers)
    llm_vars = dict(stack.deployment.vars.get("llm", {}))
    for worker in ctx.repo.order:
        script = stack.worker_name(worker, env)
        required = repo.required_secrets(worker, providers, llm_vars)
        optional = [s for s in repo.OPTIONAL_SECRETS.get(worker, ()) if s not in required]
        for name in [*required, *optional]:
            var = stack.secret_env(name)
            value = ctx.environ.get(var) or None
            needs.append(SecretNeed(worker, script, name, var, name in required, value))
    return needs


def validate_offline(ctx: Context, stack: Stack, env: Env, run: StackRun, *, dry: bool) -> None:
    """Everything that needs no network. Problems go to `run.problems`."""
    try:
        generated = config.generate(ctx.repo, stack, env)
    except (KeyError, ValueError) as exc:  # a checked-in config the generator cannot map
        run.problems.append(f"cannot generate the configs: {exc!r}")
        return
    if not dry and ctx.token(stack) is None:
        run.problems.append(
            f"${stack.account.api_token_env} is not set: account {stack.account_name}'s API"
            " token (docs/operations.md: credentials)"
        )
    if dry:
        run.plan += _plan(ctx, stack, env, generated)


def preflight(ctx: Context, cf: Cloudflare, stack: Stack, env: Env, run: StackRun) -> None:
    """Read-only: a required secret with no value in the environment must already be set on
    its Worker; a token without the Workers permission fails here, before anything changed."""
    account = stack.account.account_id
    scripts = cf.scripts(account)
    names: dict[str, set[str]] = {}
    for need in secret_needs(ctx, stack, env):
        if not need.required or need.value is not None:
            continue
        if need.script not in names:
            names[need.script] = (
                cf.secret_names(account, need.script) if need.script in scripts else set()
            )
        if need.name not in names[need.script]:
            run.problems.append(
                f"secret {need.name} of {need.script}: not set on the Worker and no value in"
                f" ${need.env_var}"
            )


def execute(ctx: Context, cf: Cloudflare, stack: Stack, env: Env, run: StackRun) -> None:
    account = stack.account.account_id
    step = "provision"
    try:
        seen, run.created = provision.ensure(cf, ctx.repo, stack, env)
        run.steps[step] = Step("ok", "")
        step = "migrate"
        run.applied = provision.migrate(cf, ctx.repo, account, seen.ids.d1 or "")
        run.steps[step] = Step("ok", "" if run.applied else "nothing to apply")
        step = "config"
        generated = config.generate(ctx.repo, stack, env, seen.ids)
        config.write(generated, ctx.repo.root, header(stack, env, dry=False))
        run.configs = [str(g.path) for g in generated]
        run.steps[step] = Step("ok", "")
        step = "deploy"
        deploy_workers(ctx, cf, stack, env, generated, run, only=None)
        run.steps[step] = Step("ok", "")
    except (CloudflareError, provision.ProvisionError, DeployError, OSError) as exc:
        run.fail(step, str(exc))
        return
    run.steps["smoke"] = smoke(ctx, f"https://{stack.domain(env)}/health")


class DeployError(Exception):
    pass


def deploy_workers(
    ctx: Context,
    cf: Cloudflare,
    stack: Stack,
    env: Env,
    generated: list[config.Generated],
    run: StackRun,
    *,
    only: set[str] | None,
) -> None:
    """wrangler deploy, callees first; then the Worker's secrets that have values here and are
    missing on it (all of them with --update-secrets). A new secret is live without a redeploy."""
    account = stack.account.account_id
    token = ctx.token(stack) or ""
    needs = secret_needs(ctx, stack, env)
    for g in generated:
        if only is not None and g.worker not in only:
            continue
        argv = wrangler_argv(ctx.repo.root, "deploy", "-c", str(g.path))
        result = ctx.runner.run(
            argv, cwd=ctx.repo.root, env=wrangler_env(ctx.repo.root, account, token)
        )
        if result.returncode != 0:
            raise DeployError(
                f"wrangler deploy -c {g.path} exited {result.returncode}:\n"
                f"{result.output[-OUTPUT_TAIL:]}"
            )
        run.deployed.append(g.script)
        mine = [n for n in needs if n.worker == g.worker and n.value is not None]
        have = cf.secret_names(account, g.script) if mine else set()
        for need in mine:
            if need.name in have and not ctx.update_secrets:
                continue
            assert need.value is not None
            cf.put_secret(account, g.script, need.name, need.value)
            run.secrets_set.append(f"{g.script}:{need.name}")


def smoke(ctx: Context, url: str) -> Step:
    last = ""
    with ctx.http() as http:
        for attempt in range(1, SMOKE_ATTEMPTS + 1):
            try:
                response = http.get(url)
            except httpx.HTTPError as exc:
                last = f"GET {url}: {exc or type(exc).__name__}"
            else:
                body = _json(response)
                if response.status_code == 200 and body.get("status") == "ok":
                    return Step("ok", f"GET {url}: ok")
                sick = [
                    f"{w.get('worker')}: {w.get('status')}"
                    for w in body.get("workers") or []
                    if isinstance(w, dict) and w.get("status") != "ok"
                ]
                last = f"GET {url}: HTTP {response.status_code} {body.get('status', '')}".strip()
                if sick:
                    last += f" ({'; '.join(sick)})"
            if attempt < SMOKE_ATTEMPTS:
                ctx.sleep(SMOKE_DELAY_S)
    return Step("failed", f"{last} (after {SMOKE_ATTEMPTS} attempts)")


def policy(ctx: Context, stack: Stack, env: Env, tenant: str, spec: SharedTenant) -> Step:
    """A shared-plan tenant's own budget and limits, through the operator API."""
    body: dict[str, Any] = {}
    if spec.policy.daily_token_budget is not None:
        body["daily_token_budget"] = spec.policy.daily_token_budget
    if spec.policy.rate_limits:
        body["rate_limits"] = spec.policy.rate_limits
    if not body:
        return Step("skipped", "")
    tenant_id = spec.tenant_ids.get(env)
    if tenant_id is None:
        return Step(
            "skipped",
            f"no tenant_ids.{env} in the manifest yet: create the tenant (POST /v1/tenants with"
            " the operator token), record its id, deploy again",
        )
    token_var = stack.secret_env("EDGERAG_OPERATOR_TOKEN")
    token = ctx.environ.get(token_var)
    if not token:
        return Step("skipped", f"${token_var} is not set: the operator token applies the policy")
    url = f"https://{stack.domain(env)}/v1/tenants/{tenant_id}"
    try:
        with ctx.http() as http:
            response = http.patch(url, json=body, headers={"authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return Step("failed", f"PATCH {url}: {exc or type(exc).__name__}")
    if response.status_code != 200:
        error = _json(response).get("error") or {}
        return Step(
            "failed", f"PATCH {url}: HTTP {response.status_code} {error.get('message', '')}"
        )
    return Step("ok", f"PATCH {url}: {', '.join(sorted(body))}")


def header(stack: Stack, env: Env, *, dry: bool) -> str:
    note = "\n# DRY RUN: resource ids are placeholders until a real deploy." if dry else ""
    return (
        f"# Generated by `python -m edgerag_cli deploy` for {stack.name}/{env} from the checked-in"
        f" config: do not edit,\n# change deploy/tenants.toml or the checked-in file and deploy"
        f" again.{note}"
    )


def _plan(ctx: Context, stack: Stack, env: Env, generated: list[config.Generated]) -> list[str]:
    spec = ctx.repo.vectorize
    props = ", ".join(f"{p} ({t})" for p, t in spec.metadata_indexes)
    migrations = ctx.repo.migration_names()
    lines = [
        "resources (each created only if missing):"
        f" D1 {stack.resource('d1', env)}, KV {stack.resource('kv', env)},"
        f" R2 {stack.resource('r2', env)},"
        f" Vectorize {stack.resource('vectorize', env)} ({spec.dimensions}, {spec.metric})"
        f" with metadata indexes {props}, before any Worker is deployed",
        f"migrations: those of {migrations[0]} … {migrations[-1]} ({len(migrations)}) not yet in"
        " d1_migrations, in order",
    ]
    kinds = {**repo.RESOURCE_TABLES, "services": "service"}
    for i, g in enumerate(generated, 1):
        lines.append(f"deploy {i}/{len(generated)}: {g.script}: wrangler deploy -c {g.path}")
        bound = []
        for b in ctx.repo.configs[g.worker].bindings:
            kind = kinds.get(b.table)
            if kind == "service":
                bound.append(f"{b.name} → {stack.worker_name(_worker_of(ctx, b.target), env)}")
            elif kind is not None:
                bound.append(f"{b.name} → {stack.resource(kind, env)}")
            else:
                bound.append(b.name)
        lines.append(f"  bindings: {', '.join(bound)}")
        if g.data.get("vars"):
            lines.append(f"  vars: {', '.join(f'{k}={v}' for k, v in g.data['vars'].items())}")
    lines.append(
        f"secrets from ${stack.secrets_prefix}<NAME> (+ has a value here; - has none, so a"
        " required one must already be set on its Worker):"
    )
    needs = secret_needs(ctx, stack, env)
    for g in generated:
        mine = [n for n in needs if n.worker == g.worker]
        if mine:
            names = [
                f"{'+' if n.value is not None else '-'}{n.name}{'' if n.required else ' (optional)'}"
                for n in mine
            ]
            lines.append(f"  {g.script}: {', '.join(names)}")
    lines.append(f"smoke: GET https://{stack.domain(env)}/health")
    return lines


def _worker_of(ctx: Context, script: str | None) -> str:
    return next(w for w, c in ctx.repo.configs.items() if c.name == script)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def tenants_on(manifest: Manifest, stack: Stack, env: Env) -> list[str]:
    return [t for t in stack.tenants if env in manifest.tenants[t].environments]
