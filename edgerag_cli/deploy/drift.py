"""Expected (manifest + generated configs + migrations) against deployed (the Cloudflare API).

Compared per stack and environment: the D1 database and its applied migrations, the KV
namespace, the R2 bucket, the Vectorize index (dimensions, metric) and its metadata indexes;
per Worker: that it exists, its bindings (type, name, target — vars included, secrets by name
only), compatibility date and flags, cron triggers, required secret names; the gateway's
custom domain. Each difference names how `--fix` repairs it (or that a person must).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgerag_cli.deploy import config, provision
from edgerag_cli.deploy.cloudflare import Cloudflare
from edgerag_cli.deploy.manifest import Env, Stack
from edgerag_cli.deploy.pipeline import Context, deploy_workers, header, secret_needs
from edgerag_cli.deploy.report import StackRun

MANUAL = "manual"  # no automatic repair: the message says what to do
# The wrangler config tables that become bindings, and their API `type` and target field.
BINDING_TABLES = {
    "d1_databases": ("d1", "database_id"),
    "kv_namespaces": ("kv_namespace", "id"),
    "r2_buckets": ("r2_bucket", "bucket_name"),
    "vectorize": ("vectorize", "index_name"),
    "services": ("service", "service"),
}
SINGLE_TABLES = ("ai", "assets", "browser", "images", "version_metadata")  # type = table
# API binding type → the field naming what it points at (script settings, upload metadata).
API_TARGETS = {
    "d1": "id",
    "kv_namespace": "namespace_id",
    "r2_bucket": "bucket_name",
    "vectorize": "index_name",
    "service": "service",
    "plain_text": "text",
}

Binding = tuple[str, str, str]  # (type, name, target)


@dataclass(frozen=True)
class Difference:
    area: str
    subject: str
    expected: str
    deployed: str
    repair: str  # provision | migrate | deploy:<worker> | secret:<worker> | manual

    def line(self) -> str:
        how = "needs a person" if self.repair == MANUAL else f"--fix: {self.repair}"
        return (
            f"{self.area:<14} {self.subject}: expected {self.expected},"
            f" deployed {self.deployed} ({how})"
        )


def expected_bindings(data: dict[str, Any]) -> set[Binding]:
    found: set[Binding] = set()
    for table, (kind, target) in BINDING_TABLES.items():
        for entry in data.get(table, []):
            found.add((kind, str(entry["binding"]), str(entry.get(target, ""))))
    for table in SINGLE_TABLES:
        entry = data.get(table)
        if isinstance(entry, dict) and "binding" in entry:
            found.add((table, str(entry["binding"]), ""))
    for name, value in data.get("vars", {}).items():
        if isinstance(value, str):
            found.add(("plain_text", name, value))
        else:
            found.add(("json", name, json.dumps(value, sort_keys=True)))
    return found


def deployed_bindings(settings: dict[str, Any]) -> set[Binding]:
    found: set[Binding] = set()
    for b in settings.get("bindings") or []:
        kind = str(b.get("type"))
        if kind in ("secret_text", "secret_key"):
            continue  # compared by name through the secrets API
        if kind == "json":
            target = json.dumps(b.get("json"), sort_keys=True)
        else:
            target = str(b.get(API_TARGETS.get(kind, ""), "") or "")
        found.add((kind, str(b.get("name")), target))
    return found


def detect(ctx: Context, cf: Cloudflare, stack: Stack, env: Env) -> list[Difference]:
    account = stack.account.account_id
    diffs: list[Difference] = []
    seen = provision.observe(cf, stack, env)
    for kind, label, found in (
        ("d1", "D1 database", seen.d1),
        ("kv", "KV namespace", seen.kv),
        ("r2", "R2 bucket", seen.r2),
        ("vectorize", "Vectorize index", seen.vectorize),
    ):
        if found is None:
            name = stack.resource(kind, env)
            diffs.append(Difference(label, name, "exists", "missing", "provision"))
    spec = ctx.repo.vectorize
    if seen.vectorize is not None:
        cfg = seen.vectorize.get("config") or {}
        have = f"{cfg.get('dimensions')}/{cfg.get('metric')}"
        if have != f"{spec.dimensions}/{spec.metric}":
            diffs.append(
                Difference(
                    "Vectorize index",
                    stack.resource("vectorize", env),
                    f"{spec.dimensions}/{spec.metric}",
                    f"{have} (fixed at creation: a new index and a re-ingest)",
                    MANUAL,
                )
            )
        for prop, kind in spec.metadata_indexes:
            current = seen.metadata_indexes.get(prop)
            if current != kind:
                diffs.append(
                    Difference(
                        "metadata index",
                        f"{stack.resource('vectorize', env)}.{prop}",
                        kind,
                        current or "missing",
                        "provision" if current is None else MANUAL,
                    )
                )
    if seen.d1 is not None:
        applied = provision.applied_migrations(cf, account, str(seen.d1["uuid"]))
        for name in provision.pending(ctx.repo, applied):
            diffs.append(Difference("migration", name, "applied", "not applied", "migrate"))
        known = set(ctx.repo.migration_names())
        for name in applied:
            if name not in known:
                diffs.append(
                    Difference(
                        "migration",
                        name,
                        "a file in migrations/",
                        "applied, but not in this checkout (deployed from a newer branch?)",
                        MANUAL,
                    )
                )
    diffs += _workers(ctx, cf, stack, env, config.generate(ctx.repo, stack, env, seen.ids))
    return diffs


def _workers(
    ctx: Context, cf: Cloudflare, stack: Stack, env: Env, generated: list[config.Generated]
) -> list[Difference]:
    account = stack.account.account_id
    diffs: list[Difference] = []
    scripts = cf.scripts(account)
    needs = secret_needs(ctx, stack, env)
    for g in generated:
        repair = f"deploy:{g.worker}"
        if g.script not in scripts:
            diffs.append(Difference("worker", g.script, "deployed", "missing", repair))
            continue
        settings = cf.script_settings(account, g.script)
        want, have = expected_bindings(g.data), deployed_bindings(settings)
        for kind, name, target in sorted(want - have):
            other = sorted(f"{k} {t}".strip() for k, n, t in have - want if n == name)
            diffs.append(
                Difference(
                    "binding",
                    f"{g.script} {name}",
                    f"{kind} {target}".strip(),
                    ", ".join(other) or "missing",
                    repair,
                )
            )
        for kind, name, target in sorted(have - want):
            if not any(n == name for _, n, _ in want):
                extra = f"{kind} {target}".strip()
                diffs.append(Difference("binding", f"{g.script} {name}", "absent", extra, repair))
        date = str(g.data.get("compatibility_date", ""))
        if str(settings.get("compatibility_date", "")) != date:
            diffs.append(
                Difference(
                    "compatibility",
                    f"{g.script} date",
                    date,
                    str(settings.get("compatibility_date")),
                    repair,
                )
            )
        flags = set(g.data.get("compatibility_flags", []))
        if set(settings.get("compatibility_flags") or []) != flags:
            diffs.append(
                Difference(
                    "compatibility",
                    f"{g.script} flags",
                    ",".join(sorted(flags)),
                    ",".join(sorted(settings.get("compatibility_flags") or [])),
                    repair,
                )
            )
        want_crons = sorted(g.data.get("triggers", {}).get("crons", []))
        have_crons = sorted(cf.schedules(account, g.script))
        if want_crons != have_crons:
            diffs.append(
                Difference(
                    "cron",
                    g.script,
                    ", ".join(want_crons) or "none",
                    ", ".join(have_crons) or "none",
                    repair,
                )
            )
        secrets = cf.secret_names(account, g.script)
        for need in needs:
            if need.worker == g.worker and need.required and need.name not in secrets:
                fix = f"secret:{g.worker}" if need.value is not None else MANUAL
                deployed = "missing" + ("" if need.value else f" (and ${need.env_var} is not set)")
                diffs.append(Difference("secret", f"{g.script} {need.name}", "set", deployed, fix))
        if "routes" in g.data:
            want_domains = {r["pattern"] for r in g.data["routes"] if r.get("custom_domain")}
            have_domains = cf.domains(account, g.script)
            for domain in sorted(want_domains - have_domains):
                diffs.append(
                    Difference(
                        "custom domain",
                        domain,
                        f"→ {g.script}",
                        ", ".join(sorted(have_domains)) or "not attached",
                        repair,
                    )
                )
    return diffs


def fix(
    ctx: Context, cf: Cloudflare, stack: Stack, env: Env, diffs: list[Difference], run: StackRun
) -> None:
    """Re-apply what differs: provision, migrate, write configs, redeploy the Workers that
    differ (all of them when a resource was re-created: their bindings point at its new id),
    and put the secrets that have values. Differences marked manual stay."""
    account = stack.account.account_id
    repairs = {d.repair for d in diffs}
    workers = {r.split(":", 1)[1] for r in repairs if r.startswith("deploy:")}
    if "provision" in repairs:
        seen, run.created = provision.ensure(cf, ctx.repo, stack, env)
        if any(not c.startswith("metadata index") for c in run.created):
            workers = set(ctx.repo.order)
    else:
        seen = provision.observe(cf, stack, env)
    if seen.d1 is not None and ("migrate" in repairs or "provision" in repairs):
        run.applied = provision.migrate(cf, ctx.repo, account, str(seen.d1["uuid"]))
    generated = config.generate(ctx.repo, stack, env, seen.ids)
    config.write(generated, ctx.repo.root, header(stack, env, dry=False))
    run.configs = [str(g.path) for g in generated]
    deploy_workers(ctx, cf, stack, env, generated, run, only=workers)
    for worker in {r.split(":", 1)[1] for r in repairs if r.startswith("secret:")} - workers:
        # not redeployed: put its missing secrets on their own
        deploy_workers_secrets(ctx, cf, stack, env, worker, run)


def deploy_workers_secrets(
    ctx: Context, cf: Cloudflare, stack: Stack, env: Env, worker: str, run: StackRun
) -> None:
    account = stack.account.account_id
    mine = [n for n in secret_needs(ctx, stack, env) if n.worker == worker and n.value]
    if not mine:
        return
    have = cf.secret_names(account, mine[0].script)
    for need in mine:
        if need.name not in have and need.value is not None:
            cf.put_secret(account, need.script, need.name, need.value)
            run.secrets_set.append(f"{need.script}:{need.name}")
