"""`deploy` and `drift` end to end against a fake Cloudflare account (tests/deploy/
fake_cloudflare.py: the REST API's documented shapes behind httpx.MockTransport, a fake
`wrangler deploy`, the deployed gateway's /health). Nothing leaves the process."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from edgerag_cli import build_parser
from edgerag_cli.deploy import cli as deploy_cli
from edgerag_cli.deploy import pipeline, repo
from edgerag_cli.deploy.manifest import Manifest, load_manifest
from tests.deploy.fake_cloudflare import FakeCloudflare, FakeWrangler

MANIFEST = repo.ROOT / "deploy" / "tenants.toml"
SCHOOLS = "5c1b6f0e9a8d4c7b8e2f1a0d3c4b5a69"
ENTERPRISE = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
TOKENS = {"CF_TOKEN_SCHOOLS": "tok-schools-123", "CF_TOKEN_ENTERPRISE": "tok-enterprise-456"}


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest(MANIFEST)


def environ_for(manifest: Manifest, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Both tokens and a value for every required secret of every stack (minus `drop`)."""
    env = dict(TOKENS)
    for stack in manifest.stacks().values():
        providers = list(stack.deployment.llm_providers)
        llm_vars = dict(stack.deployment.vars.get("llm", {}))
        for worker in repo.CONFIG_FILES:
            for name in repo.required_secrets(worker, providers, llm_vars):
                env[stack.secret_env(name)] = f"value-of-{stack.name}-{name}"
    for var in drop:
        env.pop(var)
    return env


@dataclasses.dataclass
class Harness:
    cf: FakeCloudflare
    wrangler: FakeWrangler
    environ: dict[str, str]
    sleeps: list[float] = dataclasses.field(default_factory=list)

    def __call__(self, *argv: str) -> tuple[int, str]:
        args = build_parser().parse_args(list(argv))
        out, err = io.StringIO(), io.StringIO()
        code = deploy_cli.run(
            args,
            stdout=out,
            stderr=err,
            environ=self.environ,
            transport=self.cf.transport,
            runner=self.wrangler,
            sleep=self.sleeps.append,
        )
        return code, out.getvalue() + err.getvalue()


@pytest.fixture
def h(manifest: Manifest) -> Harness:
    cf = FakeCloudflare(
        {SCHOOLS: TOKENS["CF_TOKEN_SCHOOLS"], ENTERPRISE: TOKENS["CF_TOKEN_ENTERPRISE"]}
    )
    return Harness(cf, FakeWrangler(cf), environ_for(manifest))


def table_row(output: str, tenant: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(tenant + " "))


# --- a clean account ---------------------------------------------------------------------------
def test_deploy_all_creates_everything_and_drift_then_finds_nothing(h: Harness) -> None:
    code, out = h("deploy", "--all", "--env", "prod")
    assert code == 0, out
    for tenant in ("lincoln-high", "acme-textbooks", "northwind-kb"):
        assert table_row(out, tenant)[3:9] == ["ok"] * 6, out
    assert table_row(out, "lincoln-high")[9] == "ok"  # its policy, through the operator API

    ent = h.cf.account(ENTERPRISE)
    assert {db["name"] for db in ent.d1.values()} == {
        "edgerag-acme-textbooks-prod",
        "northwind-kb-prod",
    }
    assert set(ent.r2) == {"edgerag-acme-textbooks-prod-originals", "northwind-kb-prod-files"}
    assert {ns["title"] for ns in ent.kv.values()} == {
        "edgerag-acme-textbooks-prod-cache",
        "edgerag-northwind-kb-prod-cache",
    }
    index = ent.vectorize["edgerag-acme-textbooks-prod-chunks"]
    assert index["config"] == {"dimensions": 384, "metric": "cosine"}
    assert ent.metadata["edgerag-acme-textbooks-prod-chunks"] == {
        "document_id": "string",
        "visibility": "string",
        "owner_id": "string",
    }
    migrations = [p.name for p in sorted((repo.ROOT / "migrations").glob("*.sql"))]
    assert h.cf.applied(ENTERPRISE, "edgerag-acme-textbooks-prod") == migrations
    assert h.cf.applied(SCHOOLS, "edgerag-shared-schools-prod") == migrations

    # Callees first, and every metadata index of a stack before any of its Workers.
    deploys = [what for kind, what in h.cf.events if kind == "deploy" and "acme" in what]
    order = ["llm", "ingest", "rag", "gateway"]
    assert deploys == [f"edgerag-acme-textbooks-prod-{w}" for w in order]
    first_deploy = h.cf.events.index(("deploy", "edgerag-acme-textbooks-prod-llm"))
    meta = [
        i
        for i, (kind, what) in enumerate(h.cf.events)
        if kind == "metadata_index" and "acme" in what
    ]
    assert len(meta) == 3 and max(meta) < first_deploy

    gateway = ent.scripts["edgerag-acme-textbooks-prod-gateway"]
    assert set(gateway.secrets) == {
        "EDGERAG_OPERATOR_TOKEN",
        "EDGERAG_JWT_KEYS",
        "EDGERAG_JWT_ACTIVE_KID",
    }
    assert set(ent.scripts["edgerag-acme-textbooks-prod-llm"].secrets) == {"ANTHROPIC_API_KEY"}
    assert set(ent.scripts["edgerag-northwind-kb-prod-llm"].secrets) == {"OPENAI_API_KEY"}
    assert ent.scripts["edgerag-acme-textbooks-prod-ingest"].crons == ["*/2 * * * *"]
    assert {d["hostname"] for d in ent.domains} == {
        "rag.acme-textbooks.example",
        "kb.northwind.example",
    }
    host, tenant_id, body = h.cf.policies[0]
    assert (host, tenant_id) == ("schools.edgerag.example", "t_lincolnhigh2026prod01")
    assert body == {
        "daily_token_budget": 500000,
        "rate_limits": {"answer": {"user": 40}, "search": {"tenant": 5000}},
    }
    # names of secrets may be printed, their values never
    assert "value-of-" not in out and "tok-" not in out

    code, out = h("drift", "--all", "--env", "prod")
    assert code == 0, out
    assert out.count("no differences") == 3


def test_a_second_deploy_creates_nothing_and_applies_nothing(h: Harness) -> None:
    assert h("deploy", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0
    before = len(h.cf.calls)
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 0, out
    again = h.cf.calls[before:]
    assert not [c for c in again if c.startswith(("POST", "PUT")) and not c.endswith("/query")]
    assert "created:" not in out and "migrations applied:" not in out
    assert "migrate ok: nothing to apply" in out


def test_a_shared_tenant_without_an_id_yet_deploys_and_skips_its_policy(h: Harness) -> None:
    code, out = h("deploy", "--tenant", "lincoln-high", "--env", "dev")
    assert code == 0, out
    assert table_row(out, "lincoln-high")[9] == "skipped"
    assert "no tenant_ids.dev in the manifest yet" in out
    assert "edgerag-shared-schools-dev-gateway" in h.cf.account(SCHOOLS).scripts
    assert h.cf.policies == []


# --- drift --------------------------------------------------------------------------------------
def test_drift_lists_every_change_and_fix_repairs_them(
    h: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert h("deploy", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0
    ent = h.cf.account(ENTERPRISE)
    index = "edgerag-acme-textbooks-prod-chunks"
    del ent.metadata[index]["owner_id"]
    del ent.scripts["edgerag-acme-textbooks-prod-gateway"].secrets["EDGERAG_JWT_KEYS"]
    rag = ent.scripts["edgerag-acme-textbooks-prod-rag"]
    llm = next(b for b in rag.bindings if b["name"] == "LLM")
    llm["service"] = "edgerag-acme-textbooks-prod-gateway"  # bound to the wrong Worker
    ent.scripts["edgerag-acme-textbooks-prod-ingest"].crons = []
    # a migration added to the repo since the deploy
    probe = tmp_path / "9999_drift_probe.sql"
    probe.write_text("CREATE TABLE drift_probe (id INTEGER PRIMARY KEY);\n")
    real = repo.load_repo()
    newer = dataclasses.replace(real, migrations=[*real.migrations, probe])
    monkeypatch.setattr(repo, "load_repo", lambda root=repo.ROOT: newer)

    code, out = h("drift", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 1, out
    assert "5 differences" in out
    expected = [
        f"metadata index {index}.owner_id: expected string, deployed missing (--fix: provision)",
        "secret         edgerag-acme-textbooks-prod-gateway EDGERAG_JWT_KEYS: expected set,"
        " deployed missing (--fix: secret:gateway)",
        "binding        edgerag-acme-textbooks-prod-rag LLM: expected service"
        " edgerag-acme-textbooks-prod-llm, deployed service edgerag-acme-textbooks-prod-gateway"
        " (--fix: deploy:rag)",
        "cron           edgerag-acme-textbooks-prod-ingest: expected */2 * * * *, deployed none"
        " (--fix: deploy:ingest)",
        "migration      9999_drift_probe.sql: expected applied, deployed not applied (--fix: migrate)",
    ]
    for line in expected:
        assert line in out, out

    code, out = h("drift", "--tenant", "acme-textbooks", "--env", "prod", "--fix")
    assert code == 0, out
    assert "no differences" in out
    assert ent.metadata[index]["owner_id"] == "string"
    assert ent.scripts["edgerag-acme-textbooks-prod-gateway"].secrets["EDGERAG_JWT_KEYS"]
    assert ent.scripts["edgerag-acme-textbooks-prod-ingest"].crons == ["*/2 * * * *"]
    assert h.cf.applied(ENTERPRISE, "edgerag-acme-textbooks-prod")[-1] == "9999_drift_probe.sql"
    # only what differed was redeployed
    redeployed = [Path(a[4]).stem for a in h.wrangler.argv[4:]]
    assert redeployed == ["ingest", "rag"]
    assert h("drift", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0


def test_drift_on_a_clean_account_lists_everything_missing(h: Harness) -> None:
    code, out = h("drift", "--tenant", "northwind-kb", "--env", "dev")
    assert code == 1
    for line in (
        "D1 database    northwind-kb-dev: expected exists, deployed missing (--fix: provision)",
        "R2 bucket      northwind-kb-dev-files: expected exists, deployed missing",
        "worker         edgerag-northwind-kb-dev-gateway: expected deployed, deployed missing",
    ):
        assert line in out, out
    assert h.cf.mutating_calls() == []  # drift only looks


def test_what_fix_cannot_repair_stays_and_says_so(h: Harness) -> None:
    assert h("deploy", "--tenant", "northwind-kb", "--env", "prod")[0] == 0
    ent = h.cf.account(ENTERPRISE)
    ent.vectorize["edgerag-northwind-kb-prod-chunks"]["config"]["dimensions"] = 768
    code, out = h("drift", "--tenant", "northwind-kb", "--env", "prod", "--fix")
    assert code == 1
    assert "expected 384/cosine, deployed 768/cosine" in out and "needs a person" in out


# --- failing before anything changes -----------------------------------------------------------
def test_missing_secrets_and_tokens_fail_before_touching_anything(manifest: Manifest) -> None:
    cf = FakeCloudflare(
        {SCHOOLS: TOKENS["CF_TOKEN_SCHOOLS"], ENTERPRISE: TOKENS["CF_TOKEN_ENTERPRISE"]}
    )
    environ = environ_for(
        manifest,
        drop=(
            "ACME_TEXTBOOKS_EDGERAG_JWT_KEYS",
            "ACME_TEXTBOOKS_ANTHROPIC_API_KEY",
            "CF_TOKEN_SCHOOLS",
        ),
    )
    h = Harness(cf, FakeWrangler(cf), environ)
    code, out = h("deploy", "--all", "--env", "prod")
    assert code == 1
    assert (
        "secret EDGERAG_JWT_KEYS of edgerag-acme-textbooks-prod-gateway: not set on the Worker and"
        " no value in $ACME_TEXTBOOKS_EDGERAG_JWT_KEYS" in out
    )
    assert "secret ANTHROPIC_API_KEY of edgerag-acme-textbooks-prod-llm" in out
    assert "$CF_TOKEN_SCHOOLS is not set" in out
    assert table_row(out, "acme-textbooks")[3:5] == ["failed", "skipped"]
    assert table_row(out, "northwind-kb")[3:5] == ["ok", "skipped"]  # valid, but not started
    assert cf.mutating_calls() == [] and h.wrangler.argv == []


def test_a_secret_already_on_the_worker_needs_no_value_here(h: Harness) -> None:
    assert h("deploy", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0
    del h.environ["ACME_TEXTBOOKS_EDGERAG_JWT_KEYS"]  # CI no longer holds it: fine, it is set
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 0, out


def test_manifest_problems_are_all_listed_and_nothing_runs(h: Harness, tmp_path: Path) -> None:
    bad = tmp_path / "tenants.toml"
    bad.write_text(
        MANIFEST.read_text()
        .replace(
            'plan = "dedicated"\naccount = "enterprise"\nenvironments = ["stage"',
            'plan = "dedicated"\naccount = "nowhere"\nenvironments = ["stage"',
        )
        .replace('llm_providers = ["openai"', 'llm_providers = ["gpt"')
    )
    code, out = h("deploy", "--all", "--env", "prod", "--manifest", str(bad))
    assert code == 1
    assert "tenants.acme-textbooks.account: no [accounts.nowhere] in the manifest" in out
    assert "tenants.northwind-kb.llm_providers.0: Input should be 'workers-ai'" in out
    assert h.cf.calls == []


def test_unknown_tenant_and_environment_are_usage_errors(h: Harness) -> None:
    assert h("deploy", "--tenant", "nobody", "--env", "prod")[0] == 2
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "dev")
    assert code == 2 and "has no dev environment" in out


# --- failures while deploying --------------------------------------------------------------------
def test_all_continues_past_one_tenants_failure(manifest: Manifest) -> None:
    cf = FakeCloudflare(
        {SCHOOLS: TOKENS["CF_TOKEN_SCHOOLS"], ENTERPRISE: TOKENS["CF_TOKEN_ENTERPRISE"]}
    )
    h = Harness(
        cf, FakeWrangler(cf, fail_for=["edgerag-northwind-kb-prod-rag"]), environ_for(manifest)
    )
    code, out = h("deploy", "--all", "--env", "prod")
    assert code == 1
    assert table_row(out, "northwind-kb")[3:9] == ["ok", "ok", "ok", "ok", "failed", "skipped"]
    assert table_row(out, "acme-textbooks")[3:9] == ["ok"] * 6
    assert table_row(out, "lincoln-high")[3:9] == ["ok"] * 6
    assert "wrangler deploy -c .wrangler/deploy/northwind-kb/prod/rag.toml exited 1" in out
    assert "1 of 3 failed: northwind-kb/prod" in out


def test_a_missing_permission_names_the_call_and_the_scope(h: Harness) -> None:
    h.cf.fail("GET", r"/d1/database$", 403)
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 1
    assert table_row(out, "acme-textbooks")[3:5] == ["ok", "failed"]
    assert (
        "GET /accounts/{account_id}/d1/database (list D1 databases, looking for"
        " edgerag-acme-textbooks-prod): HTTP 403: [10000] Authentication error —"
        " $CF_TOKEN_ENTERPRISE lacks the permission this call needs: D1 Edit (the Read level" in out
    )


def test_rate_limits_and_outages_are_retried(h: Harness) -> None:
    h.cf.fail(
        "POST",
        r"/d1/database$",
        429,
        headers={"retry-after": "7"},
        code=971,
        message="Please wait and consider throttling your request speed",
    )
    h.cf.fail("GET", r"/workers/scripts$", 503, times=2, code=10013, message="service unavailable")
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 0, out
    assert h.sleeps[:3] == [1.0, 2.0, 7.0]  # backoff for the 503s, then the retry-after


def test_a_gateway_that_is_not_healthy_fails_the_smoke_test(h: Harness) -> None:
    h.cf.unhealthy.add("rag.acme-textbooks.example")
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod")
    assert code == 1
    assert table_row(out, "acme-textbooks")[3:9] == ["ok"] * 5 + ["failed"]
    assert "GET https://rag.acme-textbooks.example/health: HTTP 503 degraded" in out
    assert h.sleeps == [pipeline.SMOKE_DELAY_S] * (pipeline.SMOKE_ATTEMPTS - 1)


def test_update_secrets_rotates_values_the_workers_already_have(h: Harness) -> None:
    def active_kid() -> str:
        scripts = h.cf.account(ENTERPRISE).scripts
        return scripts["edgerag-acme-textbooks-prod-gateway"].secrets["EDGERAG_JWT_ACTIVE_KID"]

    assert h("deploy", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0
    first = active_kid()
    h.environ["ACME_TEXTBOOKS_EDGERAG_JWT_ACTIVE_KID"] = "k2"
    assert h("deploy", "--tenant", "acme-textbooks", "--env", "prod")[0] == 0
    assert active_kid() == first  # already set: a plain deploy leaves it alone
    code, out = h("deploy", "--tenant", "acme-textbooks", "--env", "prod", "--update-secrets")
    assert code == 0, out
    assert active_kid() == "k2"
    assert "edgerag-acme-textbooks-prod-gateway:EDGERAG_JWT_ACTIVE_KID" in out and "k2" not in out
