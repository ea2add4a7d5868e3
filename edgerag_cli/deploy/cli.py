"""`python -m edgerag_cli deploy|drift`: argument parsing and the two runs.

Exit status: 0 all ok (drift: no differences), 1 a tenant failed or drifted (or the manifest
or the checked-in configs are invalid: every problem is printed), 2 usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from edgerag_cli.deploy import config, drift, pipeline, repo
from edgerag_cli.deploy.cloudflare import Cloudflare, CloudflareError
from edgerag_cli.deploy.manifest import (
    ENVS,
    Env,
    Manifest,
    ManifestError,
    SharedTenant,
    Stack,
    load_manifest,
)
from edgerag_cli.deploy.provision import ProvisionError
from edgerag_cli.deploy.report import StackRun, Step, TenantRow, render, render_json
from edgerag_cli.deploy.runner import Runner, SubprocessRunner

COMMANDS = ("deploy", "drift")
DEFAULT_MANIFEST = Path("deploy/tenants.toml")


class UsageError(Exception):
    pass


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = commands.add_parser(
        "deploy",
        help="provision, migrate and deploy tenants' Workers from deploy/tenants.toml",
        description="Validate the manifest and the Workers' bindings and secrets, generate the"
        " per-tenant wrangler configs, create missing resources, apply migrations, deploy the"
        " four Workers in dependency order and smoke-test /health. --dry-run does the first two"
        " for real and prints the rest, offline.",
    )
    drift_ = commands.add_parser(
        "drift",
        help="compare what is deployed with the manifest, configs and migrations",
        description="List every difference between what the manifest, the generated configs and"
        " migrations/ expect and what the Cloudflare API reports; exit 1 if there is any."
        " --fix re-applies (provision, migrate, redeploy what differs).",
    )
    for p in (deploy, drift_):
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", help="one tenant of the manifest")
        which.add_argument("--all", action="store_true", help="every tenant with --env")
        p.add_argument("--env", required=True, choices=ENVS)
        p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
        p.add_argument("--json", action="store_true", help="print the report as JSON")
    deploy.add_argument("--dry-run", action="store_true", help="offline: validate, generate, plan")
    deploy.add_argument(
        "--update-secrets",
        action="store_true",
        help="put every secret that has a value in the environment, not only missing ones",
    )
    drift_.add_argument("--fix", action="store_true", help="re-apply what differs")


def run(
    args: argparse.Namespace,
    *,
    stdout: TextIO,
    stderr: TextIO,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    runner: Runner | None = None,
    sleep: Callable[[float], None] = time.sleep,
    root: Path = repo.ROOT,
) -> int:
    """`transport` (httpx.MockTransport), `runner` and `sleep` are the seams tests use."""
    problems: list[str] = []  # the checkout's and the manifest's, all listed at once
    source: repo.Repo | None = None
    manifest: Manifest | None = None
    try:
        source = repo.load_repo(root)
    except repo.RepoError as exc:
        problems += exc.problems
    else:
        problems += config.build_problems(source)
    path: Path = args.manifest
    if not path.is_absolute() and not path.exists():
        path = root / path  # the default works from anywhere inside the checkout
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        problems += exc.problems
    if problems or source is None or manifest is None:
        _problems(problems, stderr)
        return 1
    try:
        stacks = select(manifest, args.tenant, args.env)
    except UsageError as exc:
        print(f"error: {exc}", file=stderr)
        return 2
    ctx = pipeline.Context(
        source,
        manifest,
        dict(os.environ if environ is None else environ),
        runner or SubprocessRunner(),
        transport,
        sleep,
        update_secrets=getattr(args, "update_secrets", False),
    )
    if args.command == "drift":
        return _drift(ctx, stacks, args, stdout)
    return _deploy(ctx, stacks, args, stdout)


def select(manifest: Manifest, tenant: str | None, env: Env) -> list[Stack]:
    if tenant is not None:
        spec = manifest.tenants.get(tenant)
        if spec is None:
            raise UsageError(
                f"no tenant {tenant!r} in the manifest ({', '.join(manifest.tenants)})"
            )
        if env not in spec.environments:
            raise UsageError(f"tenant {tenant} has no {env} environment ({spec.environments})")
        stack = manifest.stack_of(tenant)
        return [_only(stack, tenant)]
    stacks = [s for s in manifest.stacks().values() if env in s.environments]
    if not stacks:
        raise UsageError(f"no tenant of the manifest has a {env} environment")
    return stacks


def _only(stack: Stack, tenant: str) -> Stack:
    """--tenant on a shared stack deploys the stack, and reports (and applies policy) for the
    one tenant asked for."""
    return Stack(
        stack.name,
        stack.account_name,
        stack.account,
        stack.deployment,
        (tenant,),
        stack.environments,
    )


def _deploy(
    ctx: pipeline.Context, stacks: list[Stack], args: argparse.Namespace, out: TextIO
) -> int:
    env: Env = args.env
    runs: list[tuple[Stack, StackRun]] = []
    clients: dict[str, Cloudflare] = {}
    try:
        for stack in stacks:
            run = StackRun(
                stack.name,
                env,
                stack.account_name,
                pipeline.tenants_on(ctx.manifest, stack, env),
            )
            runs.append((stack, run))
            pipeline.validate_offline(ctx, stack, env, run, dry=args.dry_run)
            if args.dry_run or run.problems:
                continue
            try:
                clients[stack.name] = ctx.cloudflare(stack)
                pipeline.preflight(ctx, clients[stack.name], stack, env, run)
            except CloudflareError as exc:
                run.problems.append(str(exc))
        invalid = any(run.problems for _, run in runs)
        for _, run in runs:
            if run.problems:
                run.fail("validate", f"{len(run.problems)} problem(s); nothing was changed")
            else:
                run.steps["validate"] = Step("ok", "")
                if invalid:
                    run.steps["validate"].detail = "not started: another stack failed validation"
        if args.dry_run:
            for stack, run in runs:
                if not run.problems:
                    _write_dry(ctx, stack, env, run)
        elif not invalid:
            for stack, run in runs:
                pipeline.execute(ctx, clients[stack.name], stack, env, run)
    finally:
        for client in clients.values():
            client.close()
    rows = _rows(ctx, runs, env, apply_policy=not args.dry_run)
    if args.json:
        render_json(rows, out)
    else:
        render(rows, out, dry_run=args.dry_run)
    return 1 if any(r.failed for r in rows) else 0


def _write_dry(ctx: pipeline.Context, stack: Stack, env: Env, run: StackRun) -> None:
    generated = config.generate(ctx.repo, stack, env)
    config.write(generated, ctx.repo.root, pipeline.header(stack, env, dry=True))
    run.configs = [str(g.path) for g in generated]
    run.steps["config"] = Step("ok", f"written: {config.out_dir(stack, env)}/")


def _rows(
    ctx: pipeline.Context, runs: list[tuple[Stack, StackRun]], env: Env, *, apply_policy: bool
) -> list[TenantRow]:
    rows = []
    for stack, run in runs:
        for tenant in run.tenants:
            row = TenantRow(tenant, env, run)
            spec = ctx.manifest.tenants[tenant]
            if isinstance(spec, SharedTenant):
                if not apply_policy:
                    row.policy = _planned_policy(stack, env, tenant, spec, run)
                elif run.steps["smoke"].status == "ok":
                    row.policy = pipeline.policy(ctx, stack, env, tenant, spec)
            rows.append(row)
    return rows


def _planned_policy(stack: Stack, env: Env, tenant: str, spec: SharedTenant, run: StackRun) -> Step:
    fields = [f for f in ("daily_token_budget", "rate_limits") if getattr(spec.policy, f)]
    if not fields:
        return Step()
    tenant_id = spec.tenant_ids.get(env, "<tenant_ids." + env + " not set: skipped>")
    run.plan.append(
        f"policy {tenant}: PATCH https://{stack.domain(env)}/v1/tenants/{tenant_id}"
        f" {{{', '.join(fields)}}} with ${stack.secret_env('EDGERAG_OPERATOR_TOKEN')}"
    )
    return Step()


@dataclass
class DriftResult:
    stack: str
    account: str
    differences: list[drift.Difference] = field(default_factory=list)
    fixed: dict[str, list[str]] | None = None  # what --fix did
    error: str | None = None


def _drift(
    ctx: pipeline.Context, stacks: list[Stack], args: argparse.Namespace, out: TextIO
) -> int:
    env: Env = args.env
    results = []
    for stack in stacks:
        result = DriftResult(f"{stack.name}/{env}", stack.account_name)
        run = StackRun(stack.name, env, stack.account_name, list(stack.tenants))
        try:
            with ctx.cloudflare(stack) as cf:
                result.differences = drift.detect(ctx, cf, stack, env)
                if result.differences and args.fix:
                    drift.fix(ctx, cf, stack, env, result.differences, run)
                    result.fixed = {
                        "created": run.created,
                        "migrations applied": run.applied,
                        "deployed": run.deployed,
                        "secrets set": run.secrets_set,
                    }
                    result.differences = drift.detect(ctx, cf, stack, env)
        except (CloudflareError, ProvisionError, pipeline.DeployError, OSError) as exc:
            result.error = str(exc)
        results.append(result)
    failed = any(r.error or r.differences for r in results)
    if args.json:
        payload = {"ok": not failed, "stacks": [asdict(r) for r in results]}
        print(json.dumps(payload, indent=2), file=out)
        return 1 if failed else 0
    for r in results:
        title = f"drift {r.stack} (account {r.account})"
        if r.error:
            print(f"{title}: error: {r.error}", file=out)
            continue
        if r.fixed is not None:
            done = [f"{k}: {', '.join(v)}" for k, v in r.fixed.items() if v]
            print(f"{title}: --fix {'; '.join(done) or 'changed nothing'}", file=out)
        n = len(r.differences)
        print(f"{title}: {n or 'no'} difference{'' if n == 1 else 's'}", file=out)
        for d in r.differences:
            print(f"  {d.line()}", file=out)
    return 1 if failed else 0


def _problems(problems: list[str], err: TextIO) -> None:
    print(f"{len(problems)} problem(s); nothing was changed:", file=err)
    for problem in problems:
        print(f"  {problem}", file=err)
